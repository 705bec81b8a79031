package local

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshproof/meshproof/harness/backend/scrape"
	"github.com/meshproof/meshproof/harness/topology"
	"github.com/meshproof/meshproof/internal/toolbin"
)

// plan is how a service runs locally, prepared once per run.
type plan struct {
	main    launch
	helpers []launch // started before main, stopped after it (epmd)
	// init runs once after the first start, before the probe (create the
	// database, apply fixtures). It polls until the server accepts.
	init    func(ctx context.Context) error
	version string
}

// prepare picks the recipe by the explicit kind.
func (e *env) prepare(ctx context.Context, s *service) (*plan, error) {
	// 0700: a service dir holds what the backend invents for the run
	// (RabbitMQ's Erlang cookie, Postgres's password file); its owner is
	// the service's user (runAs) or the harness's.
	dir := filepath.Join(e.runDir, s.spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("service dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("service dir: %w", err)
	}
	switch k := s.spec.Meshproof.Kind; k {
	case topology.KindProcess:
		return e.processPlan(s)
	case topology.KindMongoDB:
		return e.mongoPlan(ctx, s, dir)
	case topology.KindLocalStack:
		return e.localstackPlan(ctx, s)
	case topology.KindJaeger:
		return e.jaegerPlan(ctx, s, dir)
	case topology.KindPrometheus:
		return e.prometheusPlan(ctx, s, dir)
	case topology.KindPostgres:
		return e.postgresPlan(ctx, s, dir)
	case topology.KindRabbitMQ:
		return e.rabbitPlan(s, dir)
	default:
		return nil, fmt.Errorf("kind %q has no local recipe", k)
	}
}

// baseEnv is the little of the harness's environment a service inherits;
// a container inherits nothing, and a stray PORT or OTEL_* from the
// caller's shell must not leak in.
func baseEnv() []string {
	var out []string
	for _, k := range []string{"PATH", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// declaredEnv is the service's compose environment with the scenario's
// overrides, as written.
func (e *env) declaredEnv(s *topology.Service) map[string]string {
	m := map[string]string{}
	maps.Copy(m, s.Environment)
	maps.Copy(m, e.over[s.Name])
	return m
}

// serviceEnv is compose environment + scenario overrides, with listen vars
// moved to the service's loopback ports and references to other services
// rewritten to their addresses.
func (e *env) serviceEnv(s *topology.Service) []string {
	m := e.declaredEnv(s)
	res := e.consumerResolver(s.Name)
	for k, v := range m {
		if _, ok := s.Meshproof.Listen[k]; !ok {
			m[k] = topology.Rewrite(v, res)
		}
	}
	for k, cp := range s.Meshproof.Listen {
		hp, _ := e.hostPort(s.Name, cp)
		m[k] = listenValue(m[k], hp)
	}
	out := baseEnv()
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// listenValue keeps the form of a listen setting: a bare port stays a bare
// port ("50051" -> "P"), anything else becomes a loopback address
// (":50051" or "0.0.0.0:50051" -> "127.0.0.1:P").
func listenValue(old string, port int) string {
	if old != "" && strings.Trim(old, "0123456789") == "" {
		return strconv.Itoa(port)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// portFor is the host port of the container port def when the service
// declares it, else of its probe port: recipes listen where the probe
// looks even if the compose file uses a non-default port.
func (e *env) portFor(s *topology.Service, def int) int {
	if p, ok := e.hostPort(s.Name, def); ok {
		return p
	}
	p, _ := e.hostPort(s.Name, s.Meshproof.Probe.Port)
	return p
}

// portOrFree maps a container port when declared, else picks a private
// port (for listeners nobody else addresses, e.g. Jaeger's own metrics).
func (e *env) portOrFree(s *topology.Service, cp int) (int, error) {
	if p, ok := e.hostPort(s.Name, cp); ok {
		return p, nil
	}
	return e.freePort()
}

func loopback(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }

func (e *env) processPlan(s *service) (*plan, error) {
	if s.spec.Meshproof.Local == nil || s.spec.Meshproof.Local.Program == "" {
		return nil, fmt.Errorf("kind process needs x-meshproof.local.program")
	}
	prog := s.spec.Meshproof.Local.Program
	if !filepath.IsAbs(prog) {
		prog = filepath.Join(e.topo.Dir, prog)
	}
	if st, err := os.Stat(prog); err != nil || st.IsDir() {
		return nil, fmt.Errorf("program %s not found (build it first, e.g. `make build`)", prog)
	}
	res := e.consumerResolver(s.spec.Name)
	args := make([]string, len(s.spec.Command))
	for i, a := range s.spec.Command {
		args[i] = topology.Rewrite(a, res)
	}
	return &plan{main: launch{path: prog, args: args, env: e.serviceEnv(s.spec), dir: e.topo.Dir}}, nil
}

// toolVersion is the cache key toolbin put in a binary's name
// (jaeger-v1.76.0 -> v1.76.0; stand-ins carry a source hash).
func toolVersion(bin, name string) string {
	return strings.TrimPrefix(filepath.Base(bin), name+"-")
}

func (e *env) mongoPlan(ctx context.Context, s *service, dir string) (*plan, error) {
	bin, err := e.b.tool(ctx, toolbin.MongoDBStandin)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	args := []string{"-listen", loopback(e.portFor(s.spec, 27017)), "-data-dir", data}
	return &plan{
		main:    launch{path: bin, args: args, env: e.serviceEnv(s.spec), dir: dir},
		version: "ferretdb-embedded " + toolVersion(bin, toolbin.MongoDBStandin),
	}, nil
}

func (e *env) localstackPlan(ctx context.Context, s *service) (*plan, error) {
	bin, err := e.b.tool(ctx, toolbin.LocalStackStandin)
	if err != nil {
		return nil, err
	}
	args := []string{"-listen", loopback(e.portFor(s.spec, 4566))}
	if f := s.spec.Meshproof.Fixtures; f != "" {
		if !filepath.IsAbs(f) {
			f = filepath.Join(e.topo.Dir, f)
		}
		args = append(args, "-init-dir", f)
	}
	return &plan{
		main:    launch{path: bin, args: args, env: e.serviceEnv(s.spec), dir: e.topo.Dir},
		version: "gofakes3 " + toolVersion(bin, toolbin.LocalStackStandin),
	}, nil
}

// jaegerConfig is an OpenTelemetry-collector style config for cmd/jaeger
// (Jaeger v2): OTLP in, memory storage, the query service (UI + api_v3) on
// the mapped ports. It mirrors Jaeger's embedded all-in-one config minus
// the legacy receivers, whose fixed ports would collide between runs.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
    logs:
      level: info
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

func (e *env) jaegerPlan(ctx context.Context, s *service, dir string) (*plan, error) {
	bin, err := e.b.tool(ctx, toolbin.Jaeger)
	if err != nil {
		return nil, err
	}
	var ports [5]int
	for i, cp := range []int{8888, 16686, 16685, 4317, 4318} {
		if ports[i], err = e.portOrFree(s.spec, cp); err != nil {
			return nil, err
		}
	}
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, ports[0], ports[1], ports[2], ports[3], ports[4]), 0o644); err != nil {
		return nil, fmt.Errorf("write jaeger config: %w", err)
	}
	return &plan{
		main:    launch{path: bin, args: []string{"--config", cfg}, env: e.serviceEnv(s.spec), dir: dir},
		version: toolVersion(bin, toolbin.Jaeger),
	}, nil
}

// lookPathPackage finds a program or names the Debian package that has it.
func lookPathPackage(prog, pkg string) (string, error) {
	p, err := exec.LookPath(prog)
	if err != nil {
		return "", fmt.Errorf("%s not found: install the Debian package %s (make deps)", prog, pkg)
	}
	return p, nil
}

// cmdVersion runs `prog args...` and returns the first line of its output;
// empty on any failure (a version is nice to have, never required).
func cmdVersion(ctx context.Context, prog string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func (e *env) prometheusPlan(ctx context.Context, s *service, dir string) (*plan, error) {
	bin, err := lookPathPackage("prometheus", "prometheus")
	if err != nil {
		return nil, err
	}
	var targets []scrape.Target
	for _, n := range sortedKeys(e.ports) {
		svc := e.topo.Services[n]
		if m := svc.Meshproof.Metrics; m != nil {
			hp, _ := e.hostPort(n, m.Port)
			targets = append(targets, scrape.Target{Service: n, Address: loopback(hp), Path: m.Path})
		}
	}
	cfgData, err := scrape.Config(targets)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, cfgData, 0o644); err != nil {
		return nil, fmt.Errorf("write prometheus config: %w", err)
	}
	args := []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + loopback(e.portFor(s.spec, 9090)),
		"--web.enable-lifecycle",
	}
	return &plan{
		main:    launch{path: bin, args: args, env: e.serviceEnv(s.spec), dir: dir},
		version: promVersion(cmdVersion(ctx, bin, "--version")),
	}, nil
}

// promVersion shortens "prometheus, version 2.42.0+ds (branch: ...)".
func promVersion(line string) string {
	if _, rest, ok := strings.Cut(line, "version "); ok {
		v, _, _ := strings.Cut(rest, " ")
		return "prometheus " + v
	}
	return line
}

// runAs returns the credential for a system user when the harness is root
// (postgres and rabbitmq refuse root or leave root-owned files), chowning
// dirs to it; as any other user the services run as that user.
func runAs(name string, dirs ...string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w (is its package installed?)", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range dirs {
		err := filepath.Walk(d, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return nil, fmt.Errorf("chown %s to %s: %w", d, name, err)
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// postgresBin finds the newest /usr/lib/postgresql/<ver>/bin, else initdb
// on PATH.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	p, err := lookPathPackage("initdb", "postgresql")
	if err != nil {
		return "", err
	}
	return filepath.Dir(p), nil
}

func envOr(m map[string]string, k, def string) string {
	if v := m[k]; v != "" {
		return v
	}
	return def
}

func (e *env) postgresPlan(ctx context.Context, s *service, dir string) (*plan, error) {
	binDir, err := postgresBin()
	if err != nil {
		return nil, err
	}
	cenv := e.declaredEnv(s.spec)
	pgUser := envOr(cenv, "POSTGRES_USER", "postgres")
	password := envOr(cenv, "POSTGRES_PASSWORD", "postgres")
	db := envOr(cenv, "POSTGRES_DB", pgUser)

	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	pwfile := filepath.Join(dir, "pwfile")
	for _, d := range []string{data, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("postgres dirs: %w", err)
		}
	}
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("postgres pwfile: %w", err)
	}
	cred, err := runAs("postgres", dir)
	if err != nil {
		return nil, err
	}
	env := append(baseEnv(), "HOME="+dir)
	initdb := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"-D", data, "-U", pgUser, "--pwfile="+pwfile, "--auth=md5", "--auth-local=trust",
		"-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Env, initdb.Dir = env, dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port := e.portFor(s.spec, 5432)
	args := []string{"-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", sock,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"}
	fixtures := s.spec.Meshproof.Fixtures
	if fixtures != "" && !filepath.IsAbs(fixtures) {
		fixtures = filepath.Join(e.topo.Dir, fixtures)
	}
	admin := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/postgres?sslmode=disable", urlEsc(pgUser), urlEsc(password), port)
	target := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", urlEsc(pgUser), urlEsc(password), port, urlEsc(db))
	return &plan{
		main:    launch{path: filepath.Join(binDir, "postgres"), args: args, env: env, dir: dir, cred: cred},
		init:    func(ctx context.Context) error { return postgresInit(ctx, admin, target, db, fixtures) },
		version: cmdVersion(ctx, filepath.Join(binDir, "postgres"), "--version"),
	}, nil
}

func urlEsc(s string) string {
	return strings.NewReplacer("%", "%25", "@", "%40", ":", "%3A", "/", "%2F", "?", "%3F", "#", "%23").Replace(s)
}

// postgresInit waits for the server, creates the database (as the image's
// entrypoint does for POSTGRES_DB) and applies the fixtures' *.sql in name
// order, each file as one multi-statement simple query.
func postgresInit(ctx context.Context, admin, target, db, fixtures string) error {
	var conn *pgx.Conn
	for {
		c, err := pgx.Connect(ctx, admin)
		if err == nil {
			conn = c
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if db != "postgres" {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			return fmt.Errorf("create database %s: %w", db, err)
		}
	}
	if fixtures == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(fixtures, "*.sql"))
	if err != nil || len(files) == 0 {
		return err
	}
	sort.Strings(files)
	tc, err := pgx.Connect(ctx, target)
	if err != nil {
		return fmt.Errorf("connect %s: %w", db, err)
	}
	defer tc.Close(context.WithoutCancel(ctx))
	for _, f := range files {
		sql, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("fixture: %w", err)
		}
		if _, err := tc.Exec(ctx, string(sql), pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("fixture %s: %w", filepath.Base(f), err)
		}
	}
	return nil
}
