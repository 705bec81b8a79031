package images

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBaseRootfsBuild is the slow path (debootstrap); it runs only when asked,
// because it needs root, apt and a couple of minutes.
func TestBaseRootfsBuild(t *testing.T) {
	if os.Getenv("MESHPROOF_BUILD_ROOTFS") != "1" {
		t.Skip("set MESHPROOF_BUILD_ROOTFS=1 to run debootstrap")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := &config{cacheDir: defaultCacheDir(), aptSourcesDir: "/etc/apt", log: os.Stderr}
	tarball, err := baseRootfs(ctx, c)
	require.NoError(t, err)
	require.FileExists(t, tarball)
}

// TestBuildNamed builds the images named in MESHPROOF_BUILD_IMAGES
// (comma-separated, "all" for every one) with the default env file; a manual
// stand-in for `meshproof images` while developing the Dockerfiles.
func TestBuildNamed(t *testing.T) {
	names := os.Getenv("MESHPROOF_BUILD_IMAGES")
	if names == "" {
		t.Skip("set MESHPROOF_BUILD_IMAGES=postgres,rabbitmq or all")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	opts := []Option{WithLog(os.Stderr)}
	if names != "all" {
		opts = append(opts, WithOnly(strings.Split(names, ",")...))
	}
	res, err := Build(ctx, opts...)
	require.NoError(t, err)
	for _, im := range res.Images {
		t.Logf("%s=%s built=%v took=%s", im.Var, im.Ref, im.Built, im.Took)
	}
}
