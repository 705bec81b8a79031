// Package kinds is the registry of assertion kinds. Its order is the order
// evidence is collected in after the load, and it matters:
//
//   - load first: its result is already complete when the load ends;
//   - data next: reading the stores until they settle is the drain, which
//     lets asynchronous consumers finish before anything else is read;
//   - metrics after the drain, so counters include the consumers' work;
//   - traces after that, so the slowest spans have had the longest to
//     arrive in Jaeger;
//   - logs last, so their window covers everything the others waited for.
//
// A new kind is one package under harness/assert and one line here.
package kinds

import (
	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/data"
	"github.com/meshproof/meshproof/harness/assert/load"
	"github.com/meshproof/meshproof/harness/assert/logs"
	"github.com/meshproof/meshproof/harness/assert/metrics"
	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/scenario"
)

// registry lists each kind's constructor in collection order.
var registry = []func(*scenario.Scenario) assert.Kind{
	load.New,
	data.New,
	metrics.New,
	traces.New,
	logs.New,
}

// For builds the kinds a scenario uses, in collection order.
func For(sc *scenario.Scenario) []assert.Kind {
	var out []assert.Kind
	for _, newKind := range registry {
		if k := newKind(sc); k != nil {
			out = append(out, k)
		}
	}
	return out
}
