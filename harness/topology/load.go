package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// ExtensionKey is the compose extension field that carries harness settings.
const ExtensionKey = "x-meshproof"

// DefaultReadyTimeout bounds a readiness probe when x-meshproof sets none.
const DefaultReadyTimeout = 60 * time.Second

// Option tunes Load.
type Option func(*loadConfig)

type loadConfig struct {
	envFiles []string
	env      map[string]string
	noOSEnv  bool
}

// WithEnvFile adds a dotenv file whose variables feed ${VAR} interpolation,
// e.g. .env.offline naming the stand-in images. Variables from the OS
// environment win over env files, as with `docker compose --env-file`.
// When no env file is given, a .env next to the compose file is read if it
// exists (compose's own default).
func WithEnvFile(path string) Option {
	return func(c *loadConfig) { c.envFiles = append(c.envFiles, path) }
}

// WithEnv sets interpolation variables that win over both the OS
// environment and env files; tests use it to stay independent of the
// caller's shell.
func WithEnv(env map[string]string) Option {
	return func(c *loadConfig) {
		if c.env == nil {
			c.env = map[string]string{}
		}
		maps.Copy(c.env, env)
	}
}

// WithoutOSEnv leaves the process environment out of interpolation, so a
// result depends only on the file, env files and WithEnv.
func WithoutOSEnv() Option {
	return func(c *loadConfig) { c.noOSEnv = true }
}

// Load reads a compose file into a Topology: interpolated, anchors and
// merges resolved, relative paths made absolute, and x-meshproof decoded
// strictly and validated. Errors name the service they concern.
func Load(ctx context.Context, file string, opts ...Option) (*Topology, error) {
	var cfg loadConfig
	for _, o := range opts {
		o(&cfg)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", file, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("compose file: %w", err)
	}
	dir := filepath.Dir(abs)

	var env []string
	for k, v := range cfg.env {
		env = append(env, k+"="+v)
	}
	popts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(env),
	}
	if !cfg.noOSEnv {
		popts = append(popts, cli.WithOsEnv)
	}
	envFiles := make([]string, 0, len(cfg.envFiles))
	for _, f := range cfg.envFiles {
		if !filepath.IsAbs(f) {
			if f, err = filepath.Abs(f); err != nil {
				return nil, fmt.Errorf("env file: %w", err)
			}
		}
		envFiles = append(envFiles, f)
	}
	popts = append(popts,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithResolvedPaths(true),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	po, err := cli.NewProjectOptions([]string{abs}, popts...)
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", file, err)
	}
	project, err := po.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", file, err)
	}

	t := &Topology{
		Project:  project.Name,
		Dir:      dir,
		File:     file,
		Services: make(map[string]*Service, len(project.Services)),
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		svc, err := convertService(project.Services[name], dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			continue
		}
		t.Services[name] = svc
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("compose file %s: %w", file, err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("compose file %s: %w", file, err)
	}
	return t, nil
}

// convertService turns compose-go's service into ours: the fields meshproof
// uses, with paths made absolute against dir, ports merged from ports,
// expose and the x-meshproof listen ports, and the extension's defaults
// filled in.
func convertService(sc types.ServiceConfig, dir string) (*Service, error) {
	s := &Service{
		Name:        sc.Name,
		Image:       sc.Image,
		Command:     append([]string(nil), sc.Command...),
		Entrypoint:  append([]string(nil), sc.Entrypoint...),
		Environment: setValues(sc.Environment),
		Build:       convertBuild(sc.Build, dir),
	}
	var ports portSet
	for _, p := range sc.Ports {
		ports.add(int(p.Target))
	}
	for _, e := range sc.Expose {
		exposed, err := parseExpose(e)
		if err != nil {
			return nil, err
		}
		for _, p := range exposed {
			ports.add(p)
		}
	}
	for dep := range sc.DependsOn {
		s.DependsOn = append(s.DependsOn, dep)
	}
	sort.Strings(s.DependsOn)
	s.Tmpfs = append(s.Tmpfs, sc.Tmpfs...)
	for _, v := range sc.Volumes {
		if v.Type == types.VolumeTypeTmpfs {
			s.Tmpfs = append(s.Tmpfs, v.Target)
			continue
		}
		if v.Type != types.VolumeTypeBind {
			continue
		}
		s.Volumes = append(s.Volumes, Mount{Source: absFrom(dir, v.Source), Target: v.Target, ReadOnly: v.ReadOnly})
	}
	if sc.HealthCheck != nil {
		s.Healthcheck = append([]string(nil), sc.HealthCheck.Test...)
	}

	raw, ok := sc.Extensions[ExtensionKey]
	if !ok {
		return nil, fmt.Errorf("%s is missing (it must at least name the kind)", ExtensionKey)
	}
	ext, err := decodeExt(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ExtensionKey, err)
	}
	s.Meshproof = ext
	// Listen ports are ports the service has even where compose does not
	// publish them (internal gRPC ports): they are declared for rewriting.
	for _, env := range slices.Sorted(maps.Keys(ext.Listen)) {
		ports.add(ext.Listen[env])
	}
	s.Ports = ports.list
	sort.Ints(s.Ports)
	if s.Meshproof.ReadyTimeout == 0 {
		s.Meshproof.ReadyTimeout = DefaultReadyTimeout
	}
	if m := s.Meshproof.Metrics; m != nil && m.Path == "" {
		m.Path = "/metrics"
	}
	return s, nil
}

// setValues keeps the variables that have a value: a bare `- NAME` without
// a value and without a value in the interpolation environment stays unset,
// as in compose.
func setValues(m types.MappingWithEquals) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// convertBuild is the build section with its context made absolute, or nil.
func convertBuild(b *types.BuildConfig, dir string) *Build {
	if b == nil {
		return nil
	}
	out := &Build{Context: absFrom(dir, b.Context), Dockerfile: b.Dockerfile, Target: b.Target}
	if len(b.Args) > 0 {
		out.Args = setValues(b.Args)
	}
	// compose-go may resolve the dockerfile against the context; keep it
	// relative to Context as documented.
	if filepath.IsAbs(out.Dockerfile) {
		if rel, err := filepath.Rel(out.Context, out.Dockerfile); err == nil && !strings.HasPrefix(rel, "..") {
			out.Dockerfile = rel
		}
	}
	return out
}

// portSet collects a service's ports once each, ignoring unset (zero) ones.
type portSet struct {
	seen map[int]bool
	list []int
}

func (ps *portSet) add(p int) {
	if p <= 0 || ps.seen[p] {
		return
	}
	if ps.seen == nil {
		ps.seen = map[int]bool{}
	}
	ps.seen[p] = true
	ps.list = append(ps.list, p)
}

var lineRef = regexp.MustCompile(`^line \d+: `)
var notFound = regexp.MustCompile(`field (\S+) not found in type topology\.(\w+)`)

// decodeExt decodes the raw extension strictly. compose-go hands extensions
// over as generic maps (its own decoder is lenient), so they are re-encoded
// and decoded with unknown fields rejected; a typo in x-meshproof would
// otherwise silently disable a probe or a recipe.
func decodeExt(raw any) (Ext, error) {
	var ext Ext
	b, err := yaml.Marshal(raw)
	if err != nil {
		return ext, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&ext); err != nil {
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			msgs := make([]string, 0, len(te.Errors))
			for _, m := range te.Errors {
				// Line numbers refer to the re-encoded text, not the file.
				m = lineRef.ReplaceAllString(m, "")
				m = notFound.ReplaceAllString(m, `unknown field "$1" (in $2)`)
				msgs = append(msgs, m)
			}
			return ext, errors.New(strings.Join(msgs, "; "))
		}
		return ext, err
	}
	return ext, nil
}

func parseExpose(e string) ([]int, error) {
	spec, _, _ := strings.Cut(e, "/")
	lo, hi, isRange := strings.Cut(spec, "-")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return nil, fmt.Errorf("expose %q: not a port", e)
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil || b < a {
			return nil, fmt.Errorf("expose %q: not a port range", e)
		}
	}
	var out []int
	for p := a; p <= b; p++ {
		out = append(out, p)
	}
	return out, nil
}

func absFrom(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if strings.Contains(p, "://") { // a remote build context (git URL)
		return p
	}
	return filepath.Join(dir, p)
}
