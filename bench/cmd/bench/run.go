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
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/meshproof/meshproof/bench"
	"github.com/meshproof/meshproof/harness/backend/docker"
	"github.com/meshproof/meshproof/harness/backend/images"
	"github.com/meshproof/meshproof/internal/toolbin"
)

// runner holds what every item needs: the peer tools, the target server
// and the report being filled.
type runner struct {
	self   string // this binary, re-executed for `serve` and `engine`
	root   string // repository root
	outDir string // where results.json and RESULTS.md go
	hey    string
	wrk    string
	ghz    string
	vegeta string
	round  time.Duration
	// searchBound bounds the open-model item's max-rate search.
	searchBound time.Duration
	rounds      int
	rep         *bench.Report
	srv         *server
	details     map[string]any
	log         io.Writer
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	out := fs.String("out", "bench", "directory for results.json, RESULTS.md and out/engine.pprof")
	items := fs.String("items", allItems(), itemsHelp())
	hey := fs.String("hey", "hey", "hey binary (github.com/rakyll/hey)")
	wrk := fs.String("wrk", "wrk", "wrk binary")
	ghz := fs.String("ghz", "ghz", "ghz binary (github.com/bojand/ghz/cmd/ghz)")
	vegeta := fs.String("vegeta", "vegeta", "vegeta binary (github.com/tsenart/vegeta/v12)")
	round := fs.Duration("round", 5*time.Second, "length of one timed round per tool")
	fs.DurationVar(round, "duration", 5*time.Second, "the same as -round (for quick checks: -duration 2s)")
	rounds := fs.Int("rounds", 3, "interleaved throughput rounds per tool")
	searchBound := fs.Duration("search-bound", 3*time.Minute, "bound on the open-model item's max-sustainable-rate search (both tools)")
	budget := fs.Duration("budget", 15*time.Minute, "bound on the whole run (the open-model search alone may take -search-bound)")
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
	want, err := parseItems(*items)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	r := &runner{
		self: self, root: root, outDir: *out, round: *round, rounds: max(1, *rounds), searchBound: *searchBound,
		log: os.Stderr, details: map[string]any{},
		rep: &bench.Report{Machine: bench.DescribeMachine(), Started: time.Now(), Tools: map[string]string{}},
	}
	r.hey, r.wrk, r.ghz = r.lookTool("hey", *hey), r.lookTool("wrk", *wrk), r.lookTool("ghz", *ghz)
	r.vegeta = r.lookTool("vegeta", *vegeta)
	if err := os.MkdirAll(filepath.Join(r.outDir, "out"), 0o755); err != nil {
		return fmt.Errorf("out dir: %w", err)
	}
	files, err := raiseOpenFiles()
	if err != nil {
		return fmt.Errorf("open files limit: %w", err)
	}
	r.rep.Machine.OpenFiles = files
	r.logf("bench: %d cores, %s, load average %s, %d open files per process", r.rep.Machine.Cores, r.rep.Machine.CPUModel, r.rep.Machine.LoadAvg, files)
	if needsPrepare(want) {
		r.prepare(ctx, want[itemStartupDocker])
	}
	// The budget covers the measurements, not the one-off builds above.
	ctx, cancel := context.WithTimeout(ctx, *budget)
	defer cancel()
	r.rep.Started = time.Now()

	srv, err := startServer(ctx, self)
	if err != nil {
		return err
	}
	r.srv = srv
	defer srv.stop()

	r.runItems(ctx, want)
	srv.stop()

	r.rep.Took = time.Since(r.rep.Started)
	r.rep.Details = r.details
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

// prepare builds, once per machine, what the jaeger, mesh-local and
// startup-docker items start: the helper
// binaries (Jaeger takes minutes on 2 cores) and, with a Docker daemon, the
// offline stand-in images. Both are cached by their inputs, so on a
// prepared machine this takes seconds; it is outside the timed budget.
func (r *runner) prepare(ctx context.Context, withImages bool) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	for _, name := range toolbin.Names() {
		if _, err := toolbin.Path(ctx, name); err != nil {
			r.logf("prepare: %s: %v (items needing it will say so)", name, err)
		}
	}
	if withImages {
		if err := docker.New(docker.WithLog(io.Discard)).Ping(ctx); err == nil {
			envFile := filepath.Join(r.outDir, "out", "env.offline")
			if _, err := images.Build(ctx, images.WithRoot(r.root), images.WithEnvFile(envFile)); err != nil {
				r.logf("prepare: stand-in images: %v", err)
			}
		}
	}
	r.details["prepare_seconds"] = time.Since(began).Seconds()
	r.logf("prepared tool binaries and images in %s (not timed)", time.Since(began).Round(100*time.Millisecond))
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

// toolVersion names a tool's version. Binaries built with `go install
// pkg@version` carry no version of their own (ghz prints "dev", hey has no
// flag), so theirs is read from the cache directory the Makefile installs
// them into (…/hey-v0.1.5/hey); wrk reports its Debian version.
func toolVersion(name, path string) string {
	if _, v, ok := strings.Cut(filepath.Base(filepath.Dir(path)), name+"-"); ok {
		return v
	}
	if name == "wrk" {
		out, _ := exec.Command(path, "--version").CombinedOutput()
		if f := strings.Fields(string(out)); len(f) >= 2 {
			return f[1]
		}
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
	if err := cmd.Start(); err != nil {
		return nil, usage{}, fmt.Errorf("start %s: %w", filepath.Base(name), err)
	}
	peak := watchPeakRSS(cmd.Process.Pid)
	err := cmd.Wait()
	u := usage{Wall: time.Since(began).Seconds(), PeakRSSBytes: peak()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		u.CPUSeconds = tv(ru.Utime) + tv(ru.Stime)
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

// watchPeakRSS polls the process's VmHWM (the peak resident set of its
// own address space) until the returned function is called after Wait.
// rusage's ru_maxrss cannot serve: Go starts children with a vfork-style
// clone, and Linux folds the parent's resident set, shared until exec, into
// the child's maxrss, so every child would seem as big as the bench itself.
// VmHWM only ever grows, so the last reading is the peak up to that moment;
// the child's final ~20ms may go unseen.
func watchPeakRSS(pid int) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	path := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if b, err := os.ReadFile(path); err == nil {
				if v := bench.VmHWM(b); v > peak.Load() {
					peak.Store(v)
				}
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return peak.Load()
	}
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
	u.PeakRSSBytes = max(u.PeakRSSBytes, s.PeakRSSBytes)
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
