package traces

import "slices"

// Outcome of comparing one trace with a shape.
type Outcome int

// Outcomes. Incomplete is kept apart from Mismatch: everything that arrived
// sits where the shape wants it, but expected services never showed up (or
// spans in the middle are missing) — a telemetry delay or loss, not a
// wrongly wired call.
const (
	Match Outcome = iota
	Mismatch
	Incomplete
)

func (o Outcome) String() string {
	return [...]string{"match", "mismatch", "incomplete"}[o]
}

// Classify compares a trace's tree with shape. subset lets every node have
// children beyond those listed (as if each ended with "...").
func Classify(t *Tree, shape *Shape, subset bool) Outcome {
	if len(t.Roots) == 0 {
		return Incomplete
	}
	root := mainRoot(t, shape)
	if len(t.Roots) == 1 && matchNode(shape, root, subset, nil) {
		return Match
	}
	// The shape's root service has not arrived at all (its spans are
	// exported later than its callees'): nothing that is here can be judged
	// out of place yet.
	if root.Service != shape.Service && !t.has(shape.Service) {
		return Incomplete
	}
	// Services reachable from the main root; a shape node naming any other
	// service may be missing without making the trace a mismatch.
	present := map[string]bool{}
	var walk func(n *Node)
	walk = func(n *Node) {
		present[n.Service] = true
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(root)
	if matchNode(shape, root, subset, present) {
		return Incomplete
	}
	return Mismatch
}

// mainRoot is the earliest root of the shape's root service, or else the
// earliest root (roots are sorted by start time).
func mainRoot(t *Tree, shape *Shape) *Node {
	for _, r := range t.Roots {
		if r.Service == shape.Service {
			return r
		}
	}
	return t.Roots[0]
}

// matchNode reports whether n has the shape s. With present non-nil, shape
// children whose service is not in present may be absent (the lenient pass
// that tells an incomplete trace from a wrong one).
func matchNode(s *Shape, n *Node, subset bool, present map[string]bool) bool {
	if s.Service != n.Service || s.Async != n.Async || (s.Operation != "" && s.Operation != n.Operation) {
		return false
	}
	open := subset || s.Open
	if !open && len(n.Children) > len(s.Children) {
		return false
	}
	if present == nil && len(n.Children) < len(s.Children) {
		return false
	}
	used := make([]bool, len(n.Children))
	return assign(s.Children, 0, n.Children, used, open, subset, present)
}

// assign gives each expected child its own actual child, backtracking when
// siblings share a service (a node calling service-b twice).
func assign(want []*Shape, i int, have []*Node, used []bool, open, subset bool, present map[string]bool) bool {
	if i == len(want) {
		if open {
			return true
		}
		for _, u := range used {
			if !u {
				return false // an actual child the exact shape does not list
			}
		}
		return true
	}
	w := want[i]
	for j, h := range have {
		if used[j] || h.Service != w.Service {
			continue
		}
		if matchNode(w, h, subset, present) {
			used[j] = true
			if assign(want, i+1, have, used, open, subset, present) {
				return true
			}
			used[j] = false
		}
	}
	if present != nil && !present[w.Service] {
		return assign(want, i+1, have, used, open, subset, present)
	}
	return false
}

// has reports whether any span of the trace belongs to service.
func (t *Tree) has(service string) bool {
	var walk func(n *Node) bool
	walk = func(n *Node) bool {
		if n.Service == service {
			return true
		}
		return slices.ContainsFunc(n.Children, walk)
	}
	return slices.ContainsFunc(t.Roots, walk)
}
