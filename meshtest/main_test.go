package meshtest_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/meshproof/meshproof/meshtest"
)

// compose is the repository's compose file, seen from this package.
const compose = "../docker-compose.yml"

// env is the one environment every test and example of this package
// shares: started once in TestMain, closed after the last of them. A
// package of tests pays the start-up once instead of once per test.
var env *meshtest.Env

// TestMain starts the shared environment with New — TestMain has no *testing.T,
// so Start, which reports to one, does not fit — runs the tests, and
// closes it whatever they did.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

// testMain is TestMain's body, so the deferred Close runs before os.Exit.
func testMain(m *testing.M) int {
	var err error
	env, err = meshtest.New(context.Background(), compose,
		// The local backend needs no Docker and starts in seconds.
		meshtest.WithBackend("local"),
		// gateway brings the synchronous chain it depends on; F (an
		// asynchronous consumer) and Prometheus are nobody's dependency.
		meshtest.WithServices("gateway", "service-f", "prometheus"),
		// A proxy in front of service-c, for the Latency example.
		meshtest.WithLinks("service-c:50051"),
		meshtest.WithOutput(os.Stderr),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	return m.Run()
}

// exampleT stands in, in examples, for the *testing.T a test passes to
// meshtest: an example has none. A failure panics, which fails the example.
type exampleT struct{}

func (exampleT) Helper() {}

func (exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (exampleT) FailNow() { panic("meshtest example failed") }
