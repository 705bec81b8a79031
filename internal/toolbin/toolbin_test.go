package toolbin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withHelloTool registers a copy of testdata/hello as tool "hello", with a
// private cache, and counts builds.
func withHelloTool(t *testing.T) (modDir string, builds *atomic.Int32) {
	t.Helper()
	root := t.TempDir()
	modDir = filepath.Join(root, "hello")
	require.NoError(t, os.CopyFS(modDir, os.DirFS("testdata/hello")))
	t.Setenv("MESHPROOF_ROOT", root)
	t.Setenv("MESHPROOF_CACHE", filepath.Join(root, "cache"))
	tools["hello"] = tool{dir: "hello", pkg: "."}
	builds = new(atomic.Int32)
	orig := buildFunc
	buildFunc = func(ctx context.Context, modDir, pkg, bin string) error {
		builds.Add(1)
		return orig(ctx, modDir, pkg, bin)
	}
	t.Cleanup(func() {
		delete(tools, "hello")
		buildFunc = orig
	})
	return modDir, builds
}

func TestPathBuildsOnceForConcurrentCallers(t *testing.T) {
	_, builds := withHelloTool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const callers = 6
	paths := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { paths[i], errs[i] = Path(ctx, "hello") })
	}
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		assert.Equal(t, paths[0], paths[i])
	}
	assert.EqualValues(t, 1, builds.Load(), "one build for all callers")

	out, err := exec.CommandContext(ctx, paths[0]).Output()
	require.NoError(t, err)
	assert.Equal(t, "hello from toolbin\n", string(out))

	entries, err := os.ReadDir(filepath.Dir(paths[0]))
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".tmp-", "no half-written file left")
	}
}

func TestPathRebuildsWhenSourcesChange(t *testing.T) {
	modDir, builds := withHelloTool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	first, err := Path(ctx, "hello")
	require.NoError(t, err)

	// A test file does not change the binary: same path, no build.
	require.NoError(t, os.WriteFile(filepath.Join(modDir, "main_test.go"), []byte("package main\n"), 0o644))
	same, err := Path(ctx, "hello")
	require.NoError(t, err)
	assert.Equal(t, first, same)
	assert.EqualValues(t, 1, builds.Load())

	main := filepath.Join(modDir, "main.go")
	src, err := os.ReadFile(main)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(main, []byte(strings.Replace(string(src), "hello from toolbin", "changed", 1)), 0o644))
	second, err := Path(ctx, "hello")
	require.NoError(t, err)
	assert.NotEqual(t, first, second, "edited sources get a new binary")
	assert.EqualValues(t, 2, builds.Load())
	out, err := exec.CommandContext(ctx, second).Output()
	require.NoError(t, err)
	assert.Equal(t, "changed\n", string(out))
}

func TestPathReportsBuildErrors(t *testing.T) {
	modDir, _ := withHelloTool(t)
	require.NoError(t, os.WriteFile(filepath.Join(modDir, "main.go"), []byte("package main\nfunc main() { undefinedThing() }\n"), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Path(ctx, "hello")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undefinedThing")
}

func TestPathUnknownTool(t *testing.T) {
	_, err := Path(context.Background(), "nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "mongodb-standin")
}

func TestRootFindsModuleFromWorkingDir(t *testing.T) {
	t.Setenv("MESHPROOF_ROOT", "")
	root, err := Root()
	require.NoError(t, err)
	assert.Equal(t, RootModule, modulePath(filepath.Join(root, "go.mod")))
	assert.FileExists(t, filepath.Join(root, "internal", "toolbin", "toolbin.go"))
}

func TestJaegerKeyIsItsVersion(t *testing.T) {
	t.Setenv("MESHPROOF_ROOT", "")
	root, err := Root()
	require.NoError(t, err)
	v, err := cacheKey(filepath.Join(root, tools[Jaeger].dir), tools[Jaeger])
	require.NoError(t, err)
	assert.Equal(t, "v1.76.0", v)
}

// TestStandins builds the real stand-ins (minutes on a cold cache) and
// checks each serves and answers its own probe.
func TestStandins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the stand-in programs")
	}
	t.Setenv("MESHPROOF_ROOT", "")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, name := range []string{LocalStackStandin, MongoDBStandin} {
		t.Run(name, func(t *testing.T) {
			bin, err := Path(ctx, name)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(filepath.Base(bin), name+"-"))
			again, err := Path(ctx, name)
			require.NoError(t, err)
			assert.Equal(t, bin, again)
		})
	}
}
