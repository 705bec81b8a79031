// Package meshtest brings a compose-described mesh up from Go tests and
// asserts on it with the same judges a scenario file uses.
//
// Why a Go API next to scenario files: a scenario proves one promise end to
// end, but a change to one service is often best proven by a Go test that
// drives a request, stops a peer, and checks what happened — with the
// compiler, the debugger and table-driven tests at hand. meshtest gives
// such tests three things:
//
//   - One environment. [New] (in TestMain) or [Start] (in one test) runs
//     `meshproof up` in-process; every test of a package then shares the
//     started services, so the ~15 s start is paid once, not per test.
//     [WithServices] starts only what a test needs (and what it depends on);
//     [WithAttach] reuses an environment `meshproof up --detach` left running.
//   - Go-native assertions. [RequireTraceShape], [RequireMetric],
//     [RequireLogs] and [RequireData] fail the test with the expected value,
//     the measured one and the detail (the expected-vs-actual trace tree,
//     the offending log lines) — the same text a scenario's report prints.
//     The Check* forms return that verdict instead, for a test that decides
//     for itself.
//   - The same judging as scenarios. Every Check* calls the judge of its
//     assertion kind (harness/assert/...), so a rule passes in a Go test
//     exactly when it passes in a scenario. [RunScenario] runs a whole
//     scenario file, on its own environment or on a shared one ([On]), one
//     subtest per assertion.
//
// Methods and helpers that can fail take a [T] first: a *testing.T, a
// *testing.B, or — where there is no test, as in an example — anything with
// Helper, Errorf and FailNow. [New] and [Env.Close] return errors instead,
// for TestMain, which has no T.
//
// A package shares one environment through TestMain:
//
//	var env *meshtest.Env
//
//	func TestMain(m *testing.M) {
//		var err error
//		env, err = meshtest.New(context.Background(), "../docker-compose.yml",
//			meshtest.WithBackend("local"), meshtest.WithServices("gateway"))
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		if err := env.Close(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//		}
//		os.Exit(code)
//	}
//
//	func TestGreeting(t *testing.T) {
//		res := env.Load(t, load.Config{Target: "http://gateway:8080/api/greeting", Users: 1, Requests: 5})
//		meshtest.RequireTraceShape(t, env, res.Traces[0].TraceID, "gateway\n  service-a\n    ...")
//	}
package meshtest
