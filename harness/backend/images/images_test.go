package images

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMirrorFromAptSources(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755))
	deb822 := "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
		"Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sources.list.d", "debian.sources"), []byte(deb822), 0o644))
	m, err := debianMirror(dir)
	require.NoError(t, err)
	assert.Equal(t, "http://mirror.invalid/debian", m)

	assert.Equal(t, "http://one.invalid/debian",
		mirrorFromOneLine("# c\ndeb [arch=amd64 signed-by=/k.gpg] http://one.invalid/debian bookworm main\n"))
	assert.Equal(t, "", mirrorFromOneLine("deb http://one.invalid/debian bullseye main\n"))

	_, err = debianMirror(t.TempDir())
	assert.Error(t, err)
}

func TestWriteEnvFileMerges(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".env.offline")
	require.NoError(t, os.WriteFile(p, []byte("# keep\nPOSTGRES_IMAGE=old\nOTHER=1\n"), 0o644))
	require.NoError(t, writeEnvFile(p, map[string]string{"POSTGRES_IMAGE": "new", "MONGODB_IMAGE": "m"}))
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "# keep\nPOSTGRES_IMAGE=new\nOTHER=1\nMONGODB_IMAGE=m\n", string(data))
}

func TestBuildRejectsUnknownName(t *testing.T) {
	_, err := Build(context.Background(), WithOnly("nope"), WithEnvFile(""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nope"`)
}

// TestBuildScratchImageIsCachedByInputs builds the localstack stand-in for
// real (docker must answer), then checks that a second Build reuses it and
// that a changed binary yields a new tag.
func TestBuildScratchImageIsCachedByInputs(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := filepath.Join(t.TempDir(), ".env.offline")
	prefix := "meshproof-test-" + strings.ToLower(t.Name()[:8])

	res, err := Build(ctx, WithOnly("localstack"), WithPrefix(prefix), WithEnvFile(env))
	require.NoError(t, err)
	require.Len(t, res.Images, 1)
	ref := res.Images[0].Ref
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", ref).Run() })
	assert.True(t, strings.HasPrefix(ref, prefix+"/localstack:"), ref)
	assert.True(t, imageExists(ctx, ref))
	data, err := os.ReadFile(env)
	require.NoError(t, err)
	assert.Contains(t, string(data), "LOCALSTACK_IMAGE="+ref+"\n")

	again, err := Build(ctx, WithOnly("localstack"), WithPrefix(prefix), WithEnvFile(""))
	require.NoError(t, err)
	assert.Equal(t, ref, again.Images[0].Ref)
	assert.False(t, again.Images[0].Built, "an unchanged image must be reused")

	// A different binary is a different input: a new tag.
	fake := filepath.Join(t.TempDir(), "localstack-standin")
	require.NoError(t, os.WriteFile(fake, []byte("not the real one"), 0o755))
	changed, err := Build(ctx, WithOnly("localstack"), WithPrefix(prefix), WithEnvFile(""),
		WithBinaries(func(context.Context, string) (string, error) { return fake, nil }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", changed.Images[0].Ref).Run() })
	assert.NotEqual(t, ref, changed.Images[0].Ref)
	assert.True(t, changed.Images[0].Built)
}

// requireDocker fails (never skips) when the daemon does not answer: the
// lead decides where docker tests run.
func requireDocker(t *testing.T) {
	t.Helper()
	out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	require.NoError(t, err, "docker info: %s", out)
}
