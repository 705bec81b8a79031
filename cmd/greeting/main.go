// Command greeting is the one binary of the greeting mesh. Each compose
// service runs it with a role:
//
//	greeting serve --role gateway|service-a|…|service-h
//	greeting probe HOST:PORT | http://HOST:PORT/healthz
//	greeting version
//
// probe is the healthcheck of images that have no shell (FROM scratch).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.opentelemetry.io/otel"

	"github.com/meshproof/meshproof/mesh/config"
	"github.com/meshproof/meshproof/mesh/defects"
	"github.com/meshproof/meshproof/mesh/role"
	"github.com/meshproof/meshproof/mesh/telemetry"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = ""

// Exit codes: 2 is bad input (flag, env), 1 a failure while running.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage:
  greeting serve --role gateway|service-a|...|service-h
  greeting probe HOST:PORT|http://HOST:PORT/PATH
  greeting version
`

// run is main without the process: testable, and it returns the exit code.
func run(ctx context.Context, args []string, lookup config.LookupFunc, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], lookup, stdout, stderr)
	case "probe":
		if len(args) != 2 {
			fmt.Fprint(stderr, usage)
			return exitUsage
		}
		if err := probe(ctx, args[1]); err != nil {
			fmt.Fprintf(stderr, "probe %s: %v\n", args[1], err)
			return exitFailure
		}
		return exitOK
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, buildVersion())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
	return exitUsage
}

func serve(ctx context.Context, args []string, lookup config.LookupFunc, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	roleName := fs.String("role", "", "role to run: gateway, service-a … service-h")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	r, err := config.ParseRole(*roleName)
	if err != nil {
		fmt.Fprintf(stderr, "greeting: %v\n", err)
		return exitUsage
	}
	cfg, err := config.Load(r, lookup)
	if err != nil {
		fmt.Fprintf(stderr, "greeting %s: invalid configuration:\n", r)
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				fmt.Fprintf(stderr, "  %v\n", e)
			}
		} else {
			fmt.Fprintf(stderr, "  %v\n", err)
		}
		return exitUsage
	}
	log := telemetry.NewLogger(stdout, string(r), cfg.LogLevel)
	// Export failures (collector down) are worth a warning, never an exit.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("telemetry export", "err", err) }))
	if err := role.Run(ctx, cfg, role.WithVersion(buildVersion()), role.WithTelemetry(telemetry.WithLogOutput(stdout))); err != nil {
		log.Error("role failed", "err", err)
		return exitFailure
	}
	return exitOK
}

// buildVersion names the build; a defect build (-tags defects) says so in
// `greeting version` and greeting_build_info, so it is never mistaken for
// the real mesh.
func buildVersion() string {
	if defects.Enabled {
		return baseVersion() + "+defects"
	}
	return baseVersion()
}

func baseVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "dev"
}
