// Package toolbin builds the helper programs the harness runs (stand-ins for
// images no registry can serve here, and Jaeger) from their own Go modules
// under compose/standins, and caches the binaries per machine.
//
// Each binary's file name carries a key of its build inputs — a hash of
// go.mod, go.sum and the non-test *.go files, or for Jaeger its pinned module
// version — so an edited stand-in is rebuilt and a stale binary is never
// reused, while an unchanged one is built once per machine rather than once
// per run. Builds are serialised by a lock file and published by an atomic
// rename, so parallel tests and parallel processes neither build twice nor
// run a half-written file.
package toolbin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// RootModule is the module path whose go.mod marks the repository root.
const RootModule = "github.com/meshproof/meshproof"

// Names of the tools Path knows.
const (
	MongoDBStandin    = "mongodb-standin"
	LocalStackStandin = "localstack-standin"
	Jaeger            = "jaeger"
)

// tool says where a tool's module lives and how its cache key is formed.
type tool struct {
	dir string // module dir, relative to the repo root
	pkg string // package to build, relative to the module
	// versionOf, when set, keys the binary by this module's required
	// version instead of a hash: the sources are all in the module cache
	// and pinned by go.sum, so the version says everything.
	versionOf string
}

var tools = map[string]tool{
	MongoDBStandin:    {dir: "compose/standins/mongodb", pkg: "."},
	LocalStackStandin: {dir: "compose/standins/localstack", pkg: "."},
	Jaeger:            {dir: "compose/standins/jaeger", pkg: "github.com/jaegertracing/jaeger/cmd/jaeger", versionOf: "github.com/jaegertracing/jaeger"},
}

// Names lists the tools Path can build.
func Names() []string {
	out := make([]string, 0, len(tools))
	for n := range tools {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Path returns the path of an up-to-date binary of the named tool, building
// it first when the cache has none for the current inputs. A build can take
// minutes (Jaeger ~6 min on 2 cores); ctx bounds both the build and the wait
// for another caller's build.
func Path(ctx context.Context, name string) (string, error) {
	t, ok := tools[name]
	if !ok {
		return "", fmt.Errorf("toolbin: unknown tool %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	root, err := Root()
	if err != nil {
		return "", fmt.Errorf("toolbin %s: %w", name, err)
	}
	modDir := filepath.Join(root, t.dir)
	key, err := cacheKey(modDir, t)
	if err != nil {
		return "", fmt.Errorf("toolbin %s: %w", name, err)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", fmt.Errorf("toolbin %s: %w", name, err)
	}
	bin := filepath.Join(cache, name+"-"+key)
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("toolbin %s: create cache dir: %w", name, err)
	}
	unlock, err := lockFile(ctx, bin+".lock")
	if err != nil {
		return "", fmt.Errorf("toolbin %s: %w", name, err)
	}
	defer unlock()
	// Another caller may have built it while we waited for the lock.
	if isExecutable(bin) {
		return bin, nil
	}
	if err := buildFunc(ctx, modDir, t.pkg, bin); err != nil {
		return "", fmt.Errorf("toolbin %s: %w", name, err)
	}
	return bin, nil
}

// CacheDir is $MESHPROOF_CACHE, else ~/.cache/meshproof/bin (the user cache
// dir, which follows $XDG_CACHE_HOME).
func CacheDir() (string, error) {
	if d := os.Getenv("MESHPROOF_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w (set MESHPROOF_CACHE)", err)
	}
	return filepath.Join(base, "meshproof", "bin"), nil
}

// Root finds the repository root: $MESHPROOF_ROOT, else the nearest
// directory at or above the working directory whose go.mod declares
// RootModule. Tests run in their package dir, the CLI anywhere in the repo.
func Root() (string, error) {
	if r := os.Getenv("MESHPROOF_ROOT"); r != "" {
		return filepath.Abs(r)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for dir := wd; ; {
		if modulePath(filepath.Join(dir, "go.mod")) == RootModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repo root: no go.mod of %s at or above %s (set MESHPROOF_ROOT)", RootModule, wd)
		}
		dir = parent
	}
}

// modulePath returns the module line of a go.mod, or "" when unreadable.
func modulePath(gomod string) string {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

func cacheKey(modDir string, t tool) (string, error) {
	if t.versionOf != "" {
		return requiredVersion(filepath.Join(modDir, "go.mod"), t.versionOf)
	}
	return hashInputs(modDir)
}

// requiredVersion reads the version of mod from a go.mod's require lines.
func requiredVersion(gomod, mod string) (string, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "require" && f[1] == mod {
			return f[2], nil
		}
		if len(f) >= 2 && f[0] == mod {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", gomod, mod)
}

// hashInputs hashes go.mod, go.sum and every non-test .go file of the
// module (relative path and content), plus the target platform. Test files
// are left out: they do not change the binary.
func hashInputs(modDir string) (string, error) {
	var files []string
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != modDir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		n := d.Name()
		if n == "go.mod" || n == "go.sum" || (strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", modDir, err)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("hash %s: no go.mod or .go files", modDir)
	}
	sort.Strings(files)
	h := sha256.New()
	fmt.Fprintf(h, "%s/%s\n", runtime.GOOS, runtime.GOARCH)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", modDir, err)
		}
		rel, _ := filepath.Rel(modDir, f)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// lockFile takes an exclusive flock on path, polling so that ctx can end
// the wait (a blocking flock cannot be cancelled). flock is per open file,
// so it excludes goroutines of this process as well as other processes, and
// the kernel drops it if the holder dies mid-build.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for build lock %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}

// buildFunc is build; tests wrap it to count builds.
var buildFunc = build

// build compiles pkg of the module in modDir to a temp file next to bin and
// renames it into place, so bin is either absent or complete.
func build(ctx context.Context, modDir, pkg, bin string) error {
	goBin, err := goTool()
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, goBin, "build", "-C", modDir, "-trimpath", "-buildvcs=false", "-o", tmp, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build -C %s %s: %w\n%s", modDir, pkg, err, tail(out, 4000))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("publish %s: %w", bin, err)
	}
	return nil
}

// goTool finds the go command: on PATH, else next to the running toolchain.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if isExecutable(p) {
		return p, nil
	}
	return "", errors.New("the go command is not on PATH; it is needed to build the stand-in programs")
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
