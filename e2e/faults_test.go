package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/run"
)

// The reliability scenarios (scenarios/ with a faults: section) run once per
// backend in TestScenarios like every other scenario; the hooks below then
// re-judge that run's saved artifacts with variants that break the
// guarantee, so proving each scenario can fail costs no second environment.
func init() {
	for _, rel := range reliability {
		afterRun[rel.scenario] = func(t *testing.T, rep *report.Report) {
			assert.NotEmpty(t, rep.Timeline, "the faults must show on the report's timeline")
			assert.True(t, hasKind(rep, "faults"), "the report must judge the faults themselves")
			for _, v := range rel.variants {
				t.Run(v.file, func(t *testing.T) {
					checkVariant(t, meshproofBinary(t), rep.Dir, filepath.Join("testdata", v.file), v.mustFail)
				})
			}
		}
	}
}

// variant is a scenario in testdata/ judged against the saved artifacts of
// a real run of a reliability scenario; each names the assertions that must
// fail, proving the scenario would catch the broken guarantee.
type variant struct {
	file     string
	mustFail []string
}

var reliability = []struct {
	scenario string
	variants []variant
}{
	{"broker-restart", []variant{
		{"broker-restart-lossy.yaml", []string{"F stored every confirmed greeting in MongoDB"}},
		{"broker-restart-duplicates.yaml", []string{"no greeting twice in the ledger under another id", "MongoDB holds at most the in-doubt few more"}},
	}},
	{"downstream-kill", []variant{
		{"downstream-kill-strict.yaml", []string{"error_rate == 0", "the gateway answered 503 naming service-e"}},
	}},
	{"slow-link", []variant{
		{"slow-link-misattributed.yaml", []string{
			"p(99) < 200ms",
			"the added time sits on the link to service-c / service-c p(50) > 200ms",
			"the added time sits on the link to service-c / service-b p(50) > 200ms",
		}},
	}},
}

func hasKind(rep *report.Report, kind string) bool {
	for _, r := range rep.Results {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

// checkVariant judges dir with the variant through the library (to see
// which assertions fail) and through the CLI (for the exit code CI sees).
func checkVariant(t *testing.T, bin, dir, file string, mustFail []string) {
	rep, err := run.Eval(t.Context(), dir, file, nil)
	require.NoError(t, err)
	assert.False(t, rep.Passed(), "the variant must fail")
	status := map[string]verdict.Status{}
	for _, r := range rep.Results {
		status[r.Name] = r.Status
	}
	for _, name := range mustFail {
		got, ok := status[name]
		if assert.True(t, ok, "variant has no assertion %q", name) {
			assert.Equal(t, verdict.Fail, got, "assertion %q", name)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, bin, "eval", dir, file).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "meshproof eval must fail:\n%s", b)
	assert.Equal(t, 1, ee.ExitCode(), "meshproof eval exit code:\n%s", b)
}

// TestCleanupUnderAbuse interrupts `meshproof run scenarios/smoke.yaml` ten
// times per backend at random moments spread over start-up and load —
// SIGINT on even rounds, kill -9 then `meshproof gc` on odd ones — and
// after each finds nothing of that run left: no process descended from
// it, no container or network with its pid or run label, no temp dir.
//
// Orphans must still be found after kill -9 re-parents them, so the test
// process becomes a child subreaper for the duration: every descendant of
// the harness stays our descendant.
func TestCleanupUnderAbuse(t *testing.T) {
	bin := meshproofBinary(t)
	require.NoError(t, setSubreaper(true))
	stopReaper := reapOrphansWhile()
	t.Cleanup(func() {
		stopReaper()
		_ = setSubreaper(false)
	})
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MESHPROOF_ABUSE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	t.Logf("interrupt moments from seed %d (MESHPROOF_ABUSE_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	out := t.TempDir()
	for _, backend := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			// Up takes ~8 s locally and ~15-25 s in containers here; smoke's
			// load ~1 s, then traces are fetched: spread over all of it.
			span := 12 * time.Second
			if backend == "docker" {
				span = 28 * time.Second
			}
			interrupted := 0
			for round := range 10 {
				hard := round%2 == 1
				after := 300*time.Millisecond + time.Duration(rng.Int64N(int64(span)))
				if abuseRound(t, bin, backend, out, round, hard, after) {
					interrupted++
				}
			}
			t.Logf("%d of 10 rounds interrupted a running harness (the rest had finished first)", interrupted)
			assert.GreaterOrEqual(t, interrupted, 7, "most rounds must interrupt a live run")
		})
	}
}

var runIDLine = regexp.MustCompile(`\(run ([A-Za-z0-9._-]+)\)`)

// abuseRound starts one run, interrupts it after `after`, and checks that
// nothing is left. It reports whether the harness was still running.
func abuseRound(t *testing.T, bin, backend, out string, round int, hard bool, after time.Duration) bool {
	how := "SIGINT"
	if hard {
		how = "kill -9 + gc"
	}
	var buf syncBuffer
	cmd := exec.Command(bin, "run", filepath.Join("..", "scenarios", "smoke.yaml"), "--backend", backend, "--out", out)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	live := true
	select {
	case <-exited:
		live = false
	case <-time.After(after):
		sig := os.Interrupt
		if hard {
			sig = os.Kill
		}
		_ = cmd.Process.Signal(sig)
		select {
		case <-exited:
		case <-time.After(run.DownTimeout + 30*time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("round %d: harness did not exit within %s of %s\n%s", round, run.DownTimeout+30*time.Second, how, buf.String())
		}
	}
	if hard {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		gc, err := exec.CommandContext(ctx, bin, "gc").CombinedOutput()
		cancel()
		assert.NoError(t, err, "round %d: meshproof gc:\n%s", round, gc)
	}
	runID := ""
	if m := runIDLine.FindStringSubmatch(buf.String()); m != nil {
		runID = m[1]
	}
	t.Logf("round %d: %s after %s (live=%v, run %q)", round, how, after.Round(time.Millisecond), live, runID)
	left := leftovers(t, pid, runID)
	assert.Empty(t, left, "round %d (%s after %s): left behind\n--- harness output:\n%s", round, how, after, buf.String())
	if len(left) > 0 {
		// Do not let one round's leftovers fail the next ones as well.
		sweep(bin, pid)
	}
	return live
}

// leftovers lists what the run of harness pid (run id runID, when it got
// far enough to print it) left: processes, containers, networks, dirs.
// Processes are given a few seconds to finish dying.
func leftovers(t *testing.T, pid int, runID string) []string {
	var left []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		reapOrphans()
		left = descendants(os.Getpid())
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if run.DockerAvailable(context.Background()) {
		filters := []string{"label=meshproof.pid=" + strconv.Itoa(pid)}
		if runID != "" {
			filters = append(filters, "label=meshproof.run="+runID)
		}
		for _, f := range filters {
			for _, what := range [][]string{{"ps", "-a", "--format", "container {{.Names}}"}, {"network", "ls", "--format", "network {{.Name}}"}} {
				args := append(append([]string(nil), what...), "--filter", f)
				b, err := exec.Command("docker", args...).Output()
				require.NoError(t, err, "docker %v", args)
				for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
					if l != "" {
						left = append(left, l)
					}
				}
			}
		}
	}
	if runID != "" {
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "meshproof-local-"+runID+"-*"))
		for _, d := range dirs {
			left = append(left, "dir "+d)
		}
	}
	return left
}

// descendants lists the processes below root (pid: command line), from one
// scan of /proc.
func descendants(root int) []string {
	procs, err := processes()
	if err != nil {
		return []string{"cannot read /proc: " + err.Error()}
	}
	parent := map[int]int{}
	for _, p := range procs {
		parent[p.pid] = p.ppid
	}
	var out []string
	for pid := range parent {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				out = append(out, fmt.Sprintf("process %d: %s", pid, strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))))
				break
			}
		}
	}
	return out
}

// reapOrphans collects the exit status of orphans re-parented to us, as
// init would: a zombie still counts as a member of its process group, so
// an unreaped one makes the harness believe its kill failed. Our own
// children (the harness, gc, docker) are left to their exec.Cmd.
func reapOrphans() {
	self := os.Getpid()
	procs, err := processes()
	if err != nil {
		return
	}
	for _, p := range procs {
		pid, comm := p.pid, p.comm
		if p.state != "Z" || p.ppid != self {
			continue
		}
		if comm == "meshproof" || comm == "docker" || comm == "go" {
			continue
		}
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	}
}

// reapOrphansWhile reaps orphans every 50ms until the returned stop is
// called.
func reapOrphansWhile() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				reapOrphans()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// sweep kills what a failed round left, so later rounds start clean.
func sweep(bin string, pid int) {
	for _, l := range descendants(os.Getpid()) {
		var p int
		if _, err := fmt.Sscanf(l, "process %d:", &p); err == nil && p > 1 {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = exec.CommandContext(ctx, bin, "gc").Run()
	reapOrphans()
}

// setSubreaper makes orphaned descendants re-parent to this process
// (PR_SET_CHILD_SUBREAPER) instead of init.
func setSubreaper(on bool) error {
	v := uintptr(0)
	if on {
		v = 1
	}
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, v, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", errno)
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for the child's two output pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is one line of /proc/<pid>/stat, as far as these tests need it.
type process struct {
	pid, ppid   int
	comm, state string
}

// processes reads every process's stat once.
func processes() ([]process, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out = append(out, process{pid: pid, ppid: ppid, comm: s[open+1 : end], state: f[0]})
	}
	return out, nil
}
