package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/report"
)

// Where a run's environment comes from: started by this run (the default,
// hermetic), attached to one an earlier process left running (--attach), or
// an external deployment described by an endpoints file (--endpoints). The
// phases after it are the same for all three.
type where struct {
	env environment.Environment
	// release ends the run's hold on env: Down for a started environment
	// (unless kept), the attachment's own followers otherwise.
	release func(ctx context.Context) error
	// fresh is false when the stores may hold earlier runs' data, so
	// counts are judged as changes from load start.
	fresh bool
}

// acquire gets the environment the options ask for.
func acquire(ctx context.Context, o Options, p *Prepared, fr *faultRunner, rep *report.Report, out io.Writer) (*where, error) {
	switch {
	case o.Attach != "" && o.Endpoints != "":
		return nil, inputErr("--attach and --endpoints: give one")
	case o.Environment != nil:
		if err := refuseLinkFaults(p, "a shared environment"); err != nil {
			return nil, err
		}
		rep.Backend = "given (run " + o.Environment.RunID() + ")"
		p.Services = serviceNames(o.Environment)
		fr.attach(o.Environment)
		return &where{env: o.Environment, release: func(context.Context) error { return nil }}, nil
	case o.Attach != "":
		return attach(ctx, o, p, fr, rep, out)
	case o.Endpoints != "":
		return externalEnv(o, p, fr, rep, out)
	}
	backend, err := SelectBackend(ctx, o.Backend, o.Keep)
	if err != nil {
		return nil, err
	}
	rep.Backend = backend.Name()
	if err := ensureImages(ctx, backend, p, out); err != nil {
		return nil, err
	}
	env, err := up(ctx, backend, p, fr, rep, out)
	if err != nil {
		return nil, err
	}
	release := func(ctx context.Context) error {
		if o.Keep {
			fmt.Fprintf(out, "environment kept running (run %s); attach with: meshproof run SCENARIO --attach %s; stop it with: meshproof down %s\n", rep.RunID, rep.RunID, rep.RunID)
			return nil
		}
		return env.Down(ctx)
	}
	return &where{env: env, release: release, fresh: true}, nil
}

// attach reaches an environment an earlier process started, on whichever
// backend knows the run id.
func attach(ctx context.Context, o Options, p *Prepared, fr *faultRunner, rep *report.Report, out io.Writer) (*where, error) {
	if err := refuseLinkFaults(p, "--attach"); err != nil {
		return nil, err
	}
	var tried []string
	for _, b := range allBackends(ctx) {
		if o.Backend != "" && o.Backend != "auto" && o.Backend != b.Name() {
			continue
		}
		a, ok := b.(environment.Attacher)
		if !ok {
			continue
		}
		began := time.Now()
		env, err := a.Attach(ctx, p.Topology, o.Attach, environment.AttachOptions{LogDir: filepath.Join(rep.Dir, "logs")})
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", b.Name(), err))
			continue
		}
		rep.Backend, rep.Ready = b.Name()+" (attached to "+o.Attach+")", time.Since(began)
		fmt.Fprintf(out, "▶ %s: attached to run %s on the %s backend\n", p.Scenario.Name, o.Attach, b.Name())
		p.Services = serviceNames(env)
		fr.attach(env)
		return &where{env: env, release: env.Down}, nil
	}
	return nil, envErr("attach to %s: no backend has it running (%v); `meshproof list --running` shows what runs", o.Attach, tried)
}

// refuseLinkFaults: latency and drop need a proxy put in front of a link
// when the environment starts, which an attached run cannot add.
func refuseLinkFaults(p *Prepared, mode string) error {
	var errs []error
	for i, f := range p.Scenario.Faults {
		if f.Action == faults.ActLatency || f.Action == faults.ActDrop {
			errs = append(errs, p.Scenario.Errorf(fmt.Sprintf("faults[%d].action", i),
				"%s needs a proxy in front of the link from the start; with %s run the scenario on an environment it starts", f.Action, mode))
		}
	}
	return inputJoin(errs)
}

// refuseControlFaults: an external deployment gives meshproof no control of
// its services; only link faults through the toxiproxy the file names work.
func refuseControlFaults(p *Prepared, file string, env environment.Environment) error {
	_, proxied := env.(environment.ToxiproxyAPI)
	var errs []error
	for i, f := range p.Scenario.Faults {
		link := f.Action == faults.ActLatency || f.Action == faults.ActDrop
		if !link || !proxied {
			errs = append(errs, p.Scenario.Errorf(fmt.Sprintf("faults[%d].action", i),
				"%s needs control of %s, which %s does not give (only latency/drop, through its toxiproxy:)", f.Action, f.Service, file))
		}
	}
	return inputJoin(errs)
}

func inputJoin(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return &InputError{Err: errors.Join(errs...)}
}

func serviceNames(env environment.Environment) []string {
	var names []string
	for _, s := range env.Services() {
		names = append(names, s.Name)
	}
	return names
}
