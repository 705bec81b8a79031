package traces

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Node is one service in a trace's service tree: a run of spans of one
// service linked parent→child, entered through Entry (a server, consumer or
// root span). A client span and the server span it called collapse into the
// edge between two nodes, and a service's internal and database-client
// spans stay inside its node, so the tree reads like the architecture.
type Node struct {
	Service string
	// Operation is the entry span's name.
	Operation string
	// Async is set when the node was entered by a CONSUMER span under a
	// PRODUCER span (a message through a broker), not by a call.
	Async    bool
	Entry    *Span
	Spans    []*Span
	Children []*Node
}

// Tree is the service tree of one trace. Roots holds every span whose parent
// is absent from the trace: one for a complete trace (the load's own parent
// span is never exported), more when spans in the middle are missing.
type Tree struct {
	TraceID string
	Roots   []*Node
	Spans   []Span
}

// BuildTree links spans by parent id and groups them into service nodes.
func BuildTree(spans []Span) *Tree {
	t := &Tree{Spans: spans}
	if len(spans) == 0 {
		return t
	}
	t.TraceID = spans[0].TraceID
	byID := make(map[string]int, len(spans))
	for i := range spans {
		byID[spans[i].SpanID] = i
	}
	kids := make([][]int, len(spans))
	var roots []int
	for i := range spans {
		p, ok := byID[spans[i].ParentID]
		if !ok || spans[i].ParentID == "" || p == i {
			roots = append(roots, i)
			continue
		}
		kids[p] = append(kids[p], i)
	}
	var grow func(n *Node, si int)
	grow = func(n *Node, si int) {
		parent := &spans[si]
		n.Spans = append(n.Spans, parent)
		for _, ci := range kids[si] {
			child := &spans[ci]
			async := child.Kind == KindConsumer && parent.Kind == KindProducer
			if child.Service == parent.Service && !async {
				grow(n, ci)
				continue
			}
			cn := &Node{Service: child.Service, Operation: child.Name, Entry: child,
				Async: async || child.Kind == KindConsumer || parent.Kind == KindProducer}
			n.Children = append(n.Children, cn)
			grow(cn, ci)
		}
	}
	for _, ri := range roots {
		n := &Node{Service: spans[ri].Service, Operation: spans[ri].Name, Entry: &spans[ri]}
		grow(n, ri)
		t.Roots = append(t.Roots, n)
	}
	sortNodes(t.Roots)
	return t
}

// sortNodes orders siblings by start time, then name, so drawings are stable.
func sortNodes(ns []*Node) {
	sort.SliceStable(ns, func(i, j int) bool {
		if ns[i].Entry.Start != ns[j].Entry.Start {
			return ns[i].Entry.Start < ns[j].Entry.Start
		}
		return ns[i].Service < ns[j].Service
	})
	for _, n := range ns {
		sortNodes(n.Children)
	}
}

// Duration of the node's entry span in seconds.
func (n *Node) Duration() float64 { return n.Entry.Duration() }

// Draw renders the tree in shape syntax, with each node's entry span name
// and duration, so it can be read beside the expected shape.
func (t *Tree) Draw() string {
	if len(t.Roots) == 0 {
		return "(no spans)\n"
	}
	var b strings.Builder
	var walk func(n *Node, depth int)
	walk = func(n *Node, depth int) {
		b.WriteString(strings.Repeat("  ", depth))
		if n.Async {
			b.WriteString("~> ")
		}
		fmt.Fprintf(&b, "%s: %s (%s)\n", n.Service, n.Operation,
			time.Duration(n.Duration()*float64(time.Second)).Round(10*time.Microsecond))
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	for i, r := range t.Roots {
		if i > 0 {
			b.WriteString("(fragment: parent span missing)\n")
		}
		walk(r, 0)
	}
	return b.String()
}

// walkNodes visits every node of every root.
func (t *Tree) walkNodes(f func(*Node)) {
	var walk func(n *Node)
	walk = func(n *Node) {
		f(n)
		for _, c := range n.Children {
			walk(c)
		}
	}
	for _, r := range t.Roots {
		walk(r)
	}
}
