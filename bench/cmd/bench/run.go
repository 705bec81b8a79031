package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshproof/meshproof/bench"
)

// runner holds what every item needs: the peer tools, the target server
// and the report being filled.
type runner struct {
	self    string // this binary, re-executed for `serve` and `engine`
	root    string // repository root
	outDir  string // where results.json and RESULTS.md go
	hey     string
	wrk     string
	ghz     string
	round   time.Duration
	rounds  int
	rep     *bench.Report
	srv     *server
	details map[string]any
	log     io.Writer
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	out := fs.String("out", "bench", "directory for results.json, RESULTS.md and out/engine.pprof")
	items := fs.String("items", "1,2,3,4,5,6,7,8", "comma-separated items to run")
	hey := fs.String("hey", "hey", "hey binary (github.com/rakyll/hey)")
	wrk := fs.String("wrk", "wrk", "wrk binary")
	ghz := fs.String("ghz", "ghz", "ghz binary (github.com/bojand/ghz/cmd/ghz)")
	round := fs.Duration("round", 5*time.Second, "length of one throughput round per tool")
	rounds := fs.Int("rounds", 3, "interleaved throughput rounds per tool")
	budget := fs.Duration("budget", 10*time.Minute, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	root, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("working dir: %w", err)
	}
	want := map[int]bool{}
	for _, s := range strings.Split(*items, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 8 {
			return fmt.Errorf("-items: %q is not an item number 1–8", s)
		}
		want[n] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *budget)
	defer cancel()

	r := &runner{
		self: self, root: root, outDir: *out, round: *round, rounds: max(1, *rounds),
		log: os.Stderr, details: map[string]any{},
		rep: &bench.Report{Machine: bench.DescribeMachine(), Started: time.Now(), Tools: map[string]string{}},
	}
	r.hey, r.wrk, r.ghz = r.lookTool("hey", *hey), r.lookTool("wrk", *wrk), r.lookTool("ghz", *ghz)
	if err := os.MkdirAll(filepath.Join(r.outDir, "out"), 0o755); err != nil {
		return fmt.Errorf("out dir: %w", err)
	}
	r.logf("bench: %d cores, %s, load average %s", r.rep.Machine.Cores, r.rep.Machine.CPUModel, r.rep.Machine.LoadAvg)

	srv, err := startServer(ctx, self)
	if err != nil {
		return err
	}
	r.srv = srv
	defer srv.stop()

	// The order follows cost: the engine-only items first, then those that
	// need Jaeger or a whole environment.
	steps := []struct {
		item int
		fn   func(context.Context) error
	}{
		{1, r.itemThroughputHTTP},
		{2, r.itemThroughputGRPC},
		{3, r.itemCoordinatedOmission},
		{4, r.itemAccuracy},
		{5, r.itemFootprint},
		{6, r.itemAssertionCost},
		{8, r.itemLocalEnvironment}, // item 7 (local) and item 8 share one environment
		{7, r.itemDockerStartup},
	}
	for _, s := range steps {
		if !want[s.item] && !(s.item == 8 && want[7]) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		began := time.Now()
		if err := s.fn(ctx); err != nil {
			r.logf("item %d: %v", s.item, err)
		}
		r.logf("item %d done in %s", s.item, time.Since(began).Round(100*time.Millisecond))
	}
	srv.stop()

	r.rep.Took = time.Since(r.rep.Started)
	r.rep.Details = r.details
	sort.SliceStable(r.rep.Figures, func(i, j int) bool { return r.rep.Figures[i].Item < r.rep.Figures[j].Item })
	fmt.Println()
	if err := r.rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if err := r.rep.WriteFiles(r.outDir); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s and %s (%d goals missed, took %s)\n",
		filepath.Join(r.outDir, "results.json"), filepath.Join(r.outDir, "RESULTS.md"), r.rep.Missed(), r.rep.Took.Round(time.Second))
	if ctx.Err() != nil {
		return fmt.Errorf("stopped early: %w", ctx.Err())
	}
	return nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (r *runner) add(f bench.Figure) {
	r.rep.Figures = append(r.rep.Figures, f)
	r.logf("  %s: %s (%s) %s", f.Name, bench.FormatValue(f), f.Verdict, f.Ref+f.Note)
}

// lookTool resolves a peer tool's path and records its version, "" when
// it is missing (its figures are then "not measured").
func (r *runner) lookTool(name, path string) string {
	p, err := exec.LookPath(path)
	if err != nil {
		r.rep.Tools[name] = "missing"
		return ""
	}
	v := toolVersion(name, p)
	r.rep.Tools[name] = v
	return p
}

// toolVersion asks a tool for its version; hey has no flag for it, so its
// version is taken from its cache directory name (…/hey-v0.1.5/hey).
func toolVersion(name, path string) string {
	switch name {
	case "wrk":
		out, _ := exec.Command(path, "--version").CombinedOutput()
		if f := strings.Fields(string(out)); len(f) >= 2 {
			return f[1]
		}
	case "ghz":
		out, _ := exec.Command(path, "--version").CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	dir := filepath.Base(filepath.Dir(path))
	if _, v, ok := strings.Cut(dir, name+"-"); ok {
		return v
	}
	return "unknown version"
}

// server is the `bench serve` child.
type server struct {
	cmd  *exec.Cmd
	http string // 127.0.0.1:port
	grpc string
	done chan struct{}
}

func startServer(ctx context.Context, self string) (*server, error) {
	cmd := exec.Command(self, "serve")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("target server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start target server: %w", err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	// The server prints exactly two lines; the buffer holds them whether or
	// not anyone still listens.
	lines := make(chan string, 2)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		for i := 0; sc.Scan(); i++ {
			if i < cap(lines) {
				lines <- sc.Text()
			}
		}
		_ = cmd.Wait()
	}()
	deadline := time.After(10 * time.Second)
	for s.http == "" || s.grpc == "" {
		select {
		case l := <-lines:
			if a, ok := strings.CutPrefix(l, "http "); ok {
				s.http = a
			} else if a, ok := strings.CutPrefix(l, "grpc "); ok {
				s.grpc = a
			}
		case <-s.done:
			return nil, errors.New("target server exited before listening")
		case <-deadline:
			s.stop()
			return nil, errors.New("target server did not report its ports within 10s")
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// usage is a child process's resource use, from rusage.
type usage struct {
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Wall         float64 `json:"wall_seconds"`
}

// runChild runs a program to completion within timeout and returns its
// stdout and resource use. stderr is kept for the error message.
func runChild(ctx context.Context, timeout time.Duration, name string, args ...string) ([]byte, usage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	u := usage{Wall: time.Since(began).Seconds()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		u.CPUSeconds = tv(ru.Utime) + tv(ru.Stime)
		u.PeakRSSBytes = ru.Maxrss * 1024 // Linux reports kilobytes
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 400 {
			msg = msg[len(msg)-400:]
		}
		return stdout.Bytes(), u, fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), u, nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// engine runs `bench engine` with args and decodes its summary.
func (r *runner) engine(ctx context.Context, timeout time.Duration, args ...string) (engineSummary, usage, error) {
	out, u, err := runChild(ctx, timeout, r.self, append([]string{"engine"}, args...)...)
	var s engineSummary
	if err != nil {
		return s, u, err
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return s, u, fmt.Errorf("engine summary: %w", err)
	}
	return s, u, nil
}

func (r *runner) runHey(ctx context.Context, timeout time.Duration, args ...string) (bench.PeerResult, usage, error) {
	if r.hey == "" {
		return bench.PeerResult{}, usage{}, errors.New("hey is not installed")
	}
	out, u, err := runChild(ctx, timeout, r.hey, args...)
	if err != nil {
		return bench.PeerResult{}, u, err
	}
	res, err := bench.ParseHey(string(out))
	return res, u, err
}

func (r *runner) runWrk(ctx context.Context, timeout time.Duration, args ...string) (bench.PeerResult, usage, error) {
	if r.wrk == "" {
		return bench.PeerResult{}, usage{}, errors.New("wrk is not installed")
	}
	out, u, err := runChild(ctx, timeout, r.wrk, args...)
	if err != nil {
		return bench.PeerResult{}, u, err
	}
	res, err := bench.ParseWrk(string(out))
	return res, u, err
}

func (r *runner) runGhz(ctx context.Context, timeout time.Duration, args ...string) (bench.PeerResult, usage, error) {
	if r.ghz == "" {
		return bench.PeerResult{}, usage{}, errors.New("ghz is not installed")
	}
	out, u, err := runChild(ctx, timeout, r.ghz, args...)
	if err != nil {
		return bench.PeerResult{}, u, err
	}
	res, err := bench.ParseGhz(out)
	return res, u, err
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s" }

func kRPS(v float64) string { return fmt.Sprintf("%.1fk req/s", v/1000) }
