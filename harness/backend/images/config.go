package images

import (
	"io"
	"os"
	"path/filepath"

	"github.com/meshproof/meshproof/internal/toolbin"
)

// DefaultPrefix is the repository prefix of every offline image; it cannot be
// confused with an upstream image, and `docker images meshproof-offline/*`
// lists them all.
const DefaultPrefix = "meshproof-offline"

type config struct {
	root          string
	prefix        string
	cacheDir      string
	envFile       string
	aptSourcesDir string
	only          map[string]bool
	log           io.Writer
	binary        BinaryFunc
}

// Option configures Build.
type Option func(*config)

// WithRoot sets the repository root (docker-compose.yml and compose/).
// Default: the nearest directory above the working directory holding go.mod.
func WithRoot(dir string) Option { return func(c *config) { c.root = dir } }

// WithPrefix sets the image repository prefix (default DefaultPrefix).
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithEnvFile sets the env file written with the *_IMAGE variables
// (default <root>/.env.offline; "" after this option disables writing).
func WithEnvFile(path string) Option { return func(c *config) { c.envFile = path } }

// WithOnly limits the build to the named images (see Names).
func WithOnly(names ...string) Option {
	return func(c *config) {
		c.only = map[string]bool{}
		for _, n := range names {
			c.only[n] = true
		}
	}
}

// WithLog receives progress lines and build output (default io.Discard).
func WithLog(w io.Writer) Option { return func(c *config) { c.log = w } }

// WithBinaries replaces the source of the stand-ins' static binaries
// (default toolbin.Path); tests use it to avoid long tool builds.
func WithBinaries(f BinaryFunc) Option { return func(c *config) { c.binary = f } }

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "meshproof")
	}
	return filepath.Join(os.TempDir(), "meshproof-cache")
}

// findRoot is the repository root as toolbin finds it ($MESHPROOF_ROOT or the
// module root above the working directory), so both agree on one tree.
func findRoot() (string, error) {
	return toolbin.Root()
}

// OfflineEnvFile is the file `meshproof images` writes beside the compose
// file, naming the stand-in images so compose interpolation picks them up.
const OfflineEnvFile = ".env.offline"
