package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
		for k, v := range env {
			c.env[k] = v
		}
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
	for _, name := range sortedKeys(project.Services) {
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

func convertService(sc types.ServiceConfig, dir string) (*Service, error) {
	s := &Service{
		Name:        sc.Name,
		Image:       sc.Image,
		Command:     append([]string(nil), sc.Command...),
		Entrypoint:  append([]string(nil), sc.Entrypoint...),
		Environment: map[string]string{},
	}
	for k, v := range sc.Environment {
		// A bare `- NAME` without a value and without a value in the
		// interpolation environment stays unset, as in compose.
		if v != nil {
			s.Environment[k] = *v
		}
	}
	if b := sc.Build; b != nil {
		s.Build = &Build{Context: absFrom(dir, b.Context), Dockerfile: b.Dockerfile, Target: b.Target}
		if len(b.Args) > 0 {
			s.Build.Args = map[string]string{}
			for k, v := range b.Args {
				if v != nil {
					s.Build.Args[k] = *v
				}
			}
		}
		// compose-go may resolve the dockerfile against the context; keep it
		// relative to Context as documented.
		if filepath.IsAbs(s.Build.Dockerfile) {
			if rel, err := filepath.Rel(s.Build.Context, s.Build.Dockerfile); err == nil && !strings.HasPrefix(rel, "..") {
				s.Build.Dockerfile = rel
			}
		}
	}
	seen := map[int]bool{}
	addPort := func(p int) {
		if p > 0 && !seen[p] {
			seen[p] = true
			s.Ports = append(s.Ports, p)
		}
	}
	for _, p := range sc.Ports {
		addPort(int(p.Target))
	}
	for _, e := range sc.Expose {
		ports, err := parseExpose(e)
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			addPort(p)
		}
	}
	for dep := range sc.DependsOn {
		s.DependsOn = append(s.DependsOn, dep)
	}
	sort.Strings(s.DependsOn)
	for _, v := range sc.Volumes {
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
	for _, env := range sortedKeys(ext.Listen) {
		addPort(ext.Listen[env])
	}
	sort.Ints(s.Ports)
	if s.Meshproof.ReadyTimeout == 0 {
		s.Meshproof.ReadyTimeout = DefaultReadyTimeout
	}
	if m := s.Meshproof.Metrics; m != nil && m.Path == "" {
		m.Path = "/metrics"
	}
	return s, nil
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
		var te *yaml.TypeError
		if errors.As(err, &te) {
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
