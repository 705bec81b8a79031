package data

import (
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// StoreKind is the topology kind of the service that serves the store spec
// reads ("" when spec names none or several), so a caller outside a
// scenario run (package meshtest) finds the store's endpoint the same way
// the data kind does.
func StoreKind(spec scenario.DataAssertion) topology.Kind {
	return storeKinds[Store(spec)]
}
