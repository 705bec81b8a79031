// Package images builds the offline stand-in images: local images that take
// the place of the upstream ones (rabbitmq, mongo, postgres, localstack,
// jaeger, prometheus, and the images docker-compose.yml builds itself, as its
// x-meshproof.offline sections say) on a Docker host that cannot
// pull. They are tagged <prefix>/<name>:<hash of build inputs>, so a change
// to a Dockerfile, an entrypoint, a binary or the base rootfs gives a new tag
// and a stale image is never reused; an image whose tag already exists is
// not rebuilt. Build writes the *_IMAGE variables docker-compose.yml
// interpolates to an env file (.env.offline) that the topology loader reads.
package images

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/topology"
)

// BinaryFunc returns the host path of a static tool binary by name
// ("mongodb-standin", "localstack-standin", "jaeger").
type BinaryFunc func(ctx context.Context, name string) (string, error)

// Image is one built (or already present) stand-in.
type Image struct {
	// Name is the short name (see Names).
	Name string `json:"name"`
	// Var is the compose variable that selects it, e.g. POSTGRES_IMAGE.
	Var string `json:"var"`
	// Ref is the full image reference, e.g. meshproof-offline/postgres:1a2b3c4d5e6f.
	Ref string `json:"ref"`
	// Built is false when the image already existed.
	Built bool `json:"built"`
	// Took is the time spent on it (including its inputs' builds).
	Took time.Duration `json:"took_ns"`
}

// Result is what Build did.
type Result struct {
	Images []Image `json:"images"`
	// EnvFile is the path written, "" when disabled.
	EnvFile string `json:"env_file,omitempty"`
}

// Env returns the VAR=ref pairs of the result.
func (r Result) Env() map[string]string {
	m := make(map[string]string, len(r.Images))
	for _, im := range r.Images {
		m[im.Var] = im.Ref
	}
	return m
}

// kinds of recipe, by where the image's content comes from.
const (
	recipeScratch   = iota // FROM scratch + static binaries from toolbin
	recipeDebian           // FROM the shared debootstrap base
	recipeCompose          // a compose build section with x-meshproof.offline
	recipeGoPackage        // FROM scratch + a package of the main module's build list
)

type recipe struct {
	name     string
	envVar   string
	kind     int
	binaries []string // toolbin names copied into the context
	shim     bool     // add the healthcheck shim to the context
	// goPkg is built (static, linux/amd64) from the main module into the
	// context as binName (recipeGoPackage): a tool whose version go.mod
	// already pins needs no module of its own.
	goPkg   string
	binName string
	// svc and dir are the compose service and its file's directory
	// (recipeCompose).
	svc *topology.Service
	dir string
}

var recipes = []recipe{
	{name: "mongodb", envVar: "MONGODB_IMAGE", kind: recipeScratch, binaries: []string{"mongodb-standin"}, shim: true},
	{name: "localstack", envVar: "LOCALSTACK_IMAGE", kind: recipeScratch, binaries: []string{"localstack-standin"}, shim: true},
	{name: "jaeger", envVar: "JAEGER_IMAGE", kind: recipeScratch, binaries: []string{"jaeger"}},
	{name: "postgres", envVar: "POSTGRES_IMAGE", kind: recipeDebian},
	{name: "rabbitmq", envVar: "RABBITMQ_IMAGE", kind: recipeDebian},
	{name: "prometheus", envVar: "PROMETHEUS_IMAGE", kind: recipeDebian},
	{name: "toxiproxy", envVar: "TOXIPROXY_IMAGE", kind: recipeGoPackage,
		goPkg: "github.com/Shopify/toxiproxy/v2/cmd/server", binName: "toxiproxy-server"},
}

// Names lists the stand-in images Build knows, in build order; images that
// the compose file declares (x-meshproof.offline) come before them.
func Names() []string {
	out := make([]string, len(recipes))
	for i, r := range recipes {
		out[i] = r.name
	}
	return out
}

// composeRecipes finds the services whose image the compose file builds and
// says how to build offline, one recipe per image variable.
func composeRecipes(ctx context.Context, root string) ([]recipe, error) {
	file := filepath.Join(root, "docker-compose.yml")
	if !fileExists(file) {
		return nil, nil
	}
	topo, err := topology.Load(ctx, file, topology.WithoutOSEnv())
	if err != nil {
		return nil, err
	}
	var out []recipe
	seen := map[string]bool{}
	for _, name := range topo.Names() {
		s := topo.Services[name]
		o := s.Meshproof.Offline
		if o == nil || s.Build == nil || seen[o.ImageVar] {
			continue
		}
		seen[o.ImageVar] = true
		out = append(out, recipe{name: strings.ToLower(strings.TrimSuffix(o.ImageVar, "_IMAGE")),
			envVar: o.ImageVar, kind: recipeCompose, svc: s, dir: topo.Dir})
	}
	return out, nil
}

// BuildCommand is what a person runs to build the stand-ins; error messages
// about missing images name it.
const BuildCommand = "make images"

// Build builds every stand-in (or those chosen WithOnly) that does not exist
// yet and writes the env file. It needs the docker CLI and a daemon; the
// Debian-based images also need root and apt the first time (debootstrap).
func Build(ctx context.Context, opts ...Option) (Result, error) {
	c := &config{prefix: DefaultPrefix, cacheDir: defaultCacheDir(), aptSourcesDir: "/etc/apt", log: io.Discard}
	c.envFile = "\x00default"
	for _, o := range opts {
		o(c)
	}
	if c.root == "" {
		root, err := findRoot()
		if err != nil {
			return Result{}, err
		}
		c.root = root
	}
	if c.envFile == "\x00default" {
		c.envFile = filepath.Join(c.root, OfflineEnvFile)
	}
	if c.binary == nil {
		c.binary = defaultBinaries
	}
	declared, err := composeRecipes(ctx, c.root)
	if err != nil {
		return Result{}, fmt.Errorf("offline images: %w", err)
	}
	all := slices.Concat(declared, recipes)
	for n := range c.only {
		if !known(all, n) {
			var names []string
			for _, r := range all {
				names = append(names, r.name)
			}
			return Result{}, fmt.Errorf("unknown image %q (known: %s)", n, strings.Join(names, ", "))
		}
	}
	b := &builder{config: c}
	defer func() {
		for _, d := range b.tmp {
			os.RemoveAll(d)
		}
	}()
	var res Result
	for _, r := range all {
		if c.only != nil && !c.only[r.name] {
			continue
		}
		start := time.Now()
		ref, built, err := b.build(ctx, r)
		if err != nil {
			return res, fmt.Errorf("image %s: %w", r.name, err)
		}
		res.Images = append(res.Images, Image{Name: r.name, Var: r.envVar, Ref: ref, Built: built, Took: time.Since(start)})
		verb := "exists"
		if built {
			verb = "built"
		}
		fmt.Fprintf(c.log, "images: %-10s %s %s (%s)\n", r.name, verb, ref, time.Since(start).Round(time.Millisecond))
	}
	if c.envFile != "" {
		if err := writeEnvFile(c.envFile, res.Env()); err != nil {
			return res, err
		}
		res.EnvFile = c.envFile
	}
	return res, nil
}

func known(all []recipe, name string) bool {
	for _, r := range all {
		if r.name == name {
			return true
		}
	}
	return false
}

type builder struct {
	*config
	baseRef string // the imported debootstrap base, once resolved
	shim    string // the built healthcheck shim binary
	tmp     []string
}

// build makes r's image unless one built from the same inputs exists. The
// tag is a hash of everything that goes into the image, so each recipe kind
// first prepares its context directory (and adds what the context cannot
// show, such as build arguments, to the hash); then the Dockerfile and the
// context are hashed and docker builds only a tag not yet present.
func (b *builder) build(ctx context.Context, r recipe) (ref string, built bool, err error) {
	ctxDir, err := os.MkdirTemp("", "meshproof-image-"+r.name+"-")
	if err != nil {
		return "", false, fmt.Errorf("context dir: %w", err)
	}
	defer os.RemoveAll(ctxDir)

	h := sha256.New()
	fmt.Fprintf(h, "recipe=%s/%d\n", r.name, r.kind)
	dockerfile, buildArgs, err := b.prepareContext(ctx, r, ctxDir, h)
	if err != nil {
		return "", false, err
	}
	// The hash covers the Dockerfile and everything in the context, so it
	// changes whenever any input of the image changes.
	if err := hashFile(h, "Dockerfile", dockerfile); err != nil {
		return "", false, err
	}
	if err := hashTree(h, ctxDir); err != nil {
		return "", false, err
	}
	ref = fmt.Sprintf("%s/%s:%s", b.prefix, r.name, hex.EncodeToString(h.Sum(nil))[:12])
	if imageExists(ctx, ref) {
		return ref, false, nil
	}
	args := append([]string{"build", "-q", "-t", ref, "-f", dockerfile}, buildArgs...)
	args = append(args, ctxDir)
	if err := run(ctx, b.log, []string{"DOCKER_BUILDKIT=0"}, "docker", args...); err != nil {
		return "", false, err
	}
	return ref, true, nil
}

// prepareContext fills ctxDir for r's kind of recipe and returns the
// Dockerfile and the docker build arguments; inputs that do not end up in
// the context are written to h.
func (b *builder) prepareContext(ctx context.Context, r recipe, ctxDir string, h hash.Hash) (dockerfile string, buildArgs []string, err error) {
	switch r.kind {
	case recipeCompose:
		return b.prepareCompose(ctx, r, ctxDir, h)
	case recipeScratch:
		dockerfile = filepath.Join(b.root, "compose", "images", r.name, "Dockerfile")
		return dockerfile, nil, b.prepareScratch(ctx, r, ctxDir)
	case recipeGoPackage:
		dockerfile = filepath.Join(b.root, "compose", "images", r.name, "Dockerfile")
		// -trimpath makes the binary a function of the sources alone, so
		// the inputs hash stays put between builds.
		if err := run(ctx, b.log, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"},
			"go", "-C", b.root, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ctxDir, r.binName), r.goPkg); err != nil {
			return "", nil, fmt.Errorf("build %s: %w", r.goPkg, err)
		}
		return dockerfile, nil, nil
	case recipeDebian:
		return b.prepareDebian(ctx, r, ctxDir, h)
	}
	return "", nil, nil
}

// prepareCompose runs the service's prebuild command, copies the files it
// names into the context, and turns its target and args into build
// arguments (hashed, since they are not in the context).
func (b *builder) prepareCompose(ctx context.Context, r recipe, ctxDir string, h hash.Hash) (dockerfile string, buildArgs []string, err error) {
	o := r.svc.Meshproof.Offline
	dockerfile = filepath.Join(r.svc.Build.Context, r.svc.Build.Dockerfile)
	if !fileExists(dockerfile) {
		return "", nil, fmt.Errorf("%s is missing", dockerfile)
	}
	if len(o.Prebuild) > 0 {
		env := make([]string, 0, len(o.Env))
		for k, v := range o.Env {
			env = append(env, k+"="+v)
		}
		cmd := exec.CommandContext(ctx, o.Prebuild[0], o.Prebuild[1:]...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = r.dir, append(os.Environ(), env...), b.log, b.log
		if err := cmd.Run(); err != nil {
			return "", nil, fmt.Errorf("prebuild %s: %w", strings.Join(o.Prebuild, " "), err)
		}
	}
	for _, f := range o.Files {
		if err := copyFile(filepath.Join(r.dir, f), filepath.Join(ctxDir, f), 0o755); err != nil {
			return "", nil, err
		}
	}
	if o.Target != "" {
		buildArgs = append(buildArgs, "--target", o.Target)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Args)) {
		buildArgs = append(buildArgs, "--build-arg", k+"="+o.Args[k])
		fmt.Fprintf(h, "arg %s=%s\n", k, o.Args[k])
	}
	fmt.Fprintf(h, "target=%s\n", o.Target)
	return dockerfile, buildArgs, nil
}

// prepareScratch copies the recipe's static binaries, and the healthcheck
// shim if it needs one, into the context.
func (b *builder) prepareScratch(ctx context.Context, r recipe, ctxDir string) error {
	for _, name := range r.binaries {
		p, err := b.binary(ctx, name)
		if err != nil {
			return fmt.Errorf("binary %s: %w", name, err)
		}
		if err := copyFile(p, filepath.Join(ctxDir, name), 0o755); err != nil {
			return err
		}
	}
	if !r.shim {
		return nil
	}
	shim, err := b.healthcheckShim(ctx)
	if err != nil {
		return err
	}
	return copyFile(shim, filepath.Join(ctxDir, "healthcheck"), 0o755)
}

// prepareDebian copies the recipe's directory into the context and points
// BASE at the shared debootstrap image, whose ref (itself a hash of its
// inputs) joins the hash.
func (b *builder) prepareDebian(ctx context.Context, r recipe, ctxDir string, h hash.Hash) (dockerfile string, buildArgs []string, err error) {
	dir := filepath.Join(b.root, "compose", "images", r.name)
	if err := copyDir(dir, ctxDir); err != nil {
		return "", nil, err
	}
	base, err := b.base(ctx)
	if err != nil {
		return "", nil, err
	}
	fmt.Fprintf(h, "base=%s\n", base)
	return filepath.Join(dir, "Dockerfile"), []string{"--build-arg", "BASE=" + base}, nil
}

// base imports the cached debootstrap rootfs as <prefix>/debian-base:<hash>.
func (b *builder) base(ctx context.Context) (string, error) {
	if b.baseRef != "" {
		return b.baseRef, nil
	}
	ref := fmt.Sprintf("%s/debian-base:%s", b.prefix, baseRecipeHash())
	if !imageExists(ctx, ref) {
		tarball, err := baseRootfs(ctx, b.config)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(b.log, "images: importing %s as %s\n", tarball, ref)
		if err := run(ctx, b.log, nil, "docker", "import",
			"--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"--change", "ENV LANG=C.UTF-8",
			"--change", `CMD ["/bin/bash"]`,
			tarball, ref); err != nil {
			return "", fmt.Errorf("import base: %w", err)
		}
	}
	b.baseRef = ref
	return ref, nil
}

// healthcheckShim builds compose/images/healthcheck once per Build.
func (b *builder) healthcheckShim(ctx context.Context) (string, error) {
	if b.shim != "" {
		return b.shim, nil
	}
	dir, err := os.MkdirTemp("", "meshproof-shim-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "healthcheck")
	if err := run(ctx, b.log, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"},
		"go", "-C", b.root, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./compose/images/healthcheck"); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("build healthcheck shim: %w", err)
	}
	b.shim = out
	b.tmp = append(b.tmp, dir)
	return out, nil
}

// imageExists asks the daemon whether ref is present locally.
func imageExists(ctx context.Context, ref string) bool {
	return exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", ref).Run() == nil
}

// writeEnvFile merges vars into path, keeping unrelated lines, so building a
// subset of the images does not forget the others.
func writeEnvFile(path string, vars map[string]string) error {
	var lines []string
	seen := map[string]bool{}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if k, _, ok := strings.Cut(line, "="); ok {
				if v, mine := vars[strings.TrimSpace(k)]; mine {
					line = k + "=" + v
					seen[k] = true
				}
			}
			lines = append(lines, line)
		}
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	} else {
		lines = append(lines, "# Written by `meshproof images`: offline stand-in images for docker-compose.yml.",
			"# Use: docker compose --env-file "+OfflineEnvFile+" up")
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, k+"="+vars[k])
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
