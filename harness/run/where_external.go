package run

import (
	"fmt"
	"io"

	"github.com/meshproof/meshproof/harness/backend/external"
	"github.com/meshproof/meshproof/harness/report"
)

// externalEnv reads the endpoints file of a deployment meshproof did not
// start and cannot stop.
func externalEnv(o Options, p *Prepared, fr *faultRunner, rep *report.Report, out io.Writer) (*where, error) {
	env, err := external.Load(o.Endpoints, p.Topology)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	if err := refuseControlFaults(p, o.Endpoints, env); err != nil {
		return nil, err
	}
	rep.Backend = "external (" + o.Endpoints + ")"
	fmt.Fprintf(out, "▶ %s: against the deployment in %s\n", p.Scenario.Name, o.Endpoints)
	p.Services = serviceNames(env)
	fr.attach(env)
	return &where{env: env, release: env.Down}, nil
}
