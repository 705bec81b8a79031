package traces

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Shape is one node of an expected service tree, parsed from indented text:
//
//	gateway
//	  service-a: greeting.v3.GreetingService/Greeting
//	    service-b
//	      ~> service-f
//	    ...
//
// Children are unordered. "~>" marks an asynchronous edge (a CONSUMER span
// under a PRODUCER span of the parent service); "..." among a node's
// children allows children beyond those listed.
type Shape struct {
	Service string
	// Operation, when set, must equal the name of the node's entry span.
	Operation string
	Async     bool
	// Open is set by a "..." child line.
	Open     bool
	Children []*Shape
	// Line is the 1-based line in the shape text, for error messages.
	Line int
	// Col is the 1-based column of the service name on that line.
	Col int
}

// ShapeError is a problem on one line of a shape's text, so that scenario
// validation can point at that line of the file.
type ShapeError struct {
	// Line and Col are 1-based in the shape text; 0 when the problem is the
	// whole shape (it is empty).
	Line, Col int
	// Text is the offending line, trimmed.
	Text string
	Msg  string
}

func (e *ShapeError) Error() string {
	switch {
	case e.Line == 0:
		return "shape " + e.Msg
	case e.Text == "":
		return fmt.Sprintf("shape line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("shape line %d %q: %s", e.Line, e.Text, e.Msg)
}

// shapeLine is one non-blank, non-comment line of a shape.
type shapeLine struct {
	n, indent int
	raw, body string
}

func shapeLines(text string) []shapeLine {
	var out []shapeLine
	for i, raw := range strings.Split(text, "\n") {
		body := strings.TrimSpace(raw)
		if body == "" || strings.HasPrefix(body, "#") {
			continue
		}
		indent := len(raw) - len(strings.TrimLeft(raw, " "))
		out = append(out, shapeLine{n: i + 1, indent: indent, raw: raw, body: body})
	}
	return out
}

// shapeParser builds the tree line by line; open holds the nodes a
// following line may be a child of, outermost first.
type shapeParser struct {
	root *Shape
	open []*Shape
	// indents[i] is the indentation of open[i].
	indents []int
	// step is the indentation of a child under its parent, set by the first
	// indented line.
	step int
}

// ParseShape reads an indented service tree. Indentation may be any number
// of spaces, used consistently: the first indented line sets the step, each
// child sits exactly one step right of its parent, and a line that moves
// left lands on a level some line above is on. Tabs are refused because
// their width is a matter of taste and would make depth ambiguous. Errors
// are *ShapeError.
func ParseShape(text string) (*Shape, error) {
	p := &shapeParser{}
	for _, l := range shapeLines(text) {
		if err := p.line(l); err != nil {
			return nil, err
		}
	}
	if p.root == nil {
		return nil, &ShapeError{Msg: "is empty: write the root service on the first line"}
	}
	return p.root, nil
}

func (p *shapeParser) line(l shapeLine) error {
	if i := strings.IndexRune(l.raw, '\t'); i >= 0 {
		return &ShapeError{Line: l.n, Col: i + 1, Text: l.body, Msg: "indent with spaces, not tabs"}
	}
	if err := p.place(l); err != nil {
		return err
	}
	if l.body == "..." {
		if len(p.open) == 0 {
			return &ShapeError{Line: l.n, Col: l.indent + 1, Msg: "\"...\" needs a parent node above it"}
		}
		p.open[len(p.open)-1].Open = true
		return nil
	}
	node, err := parseNode(l)
	if err != nil {
		return err
	}
	switch {
	case len(p.open) > 0:
		parent := p.open[len(p.open)-1]
		parent.Children = append(parent.Children, node)
	case p.root != nil:
		return &ShapeError{Line: l.n, Col: node.Col, Text: l.body, Msg: fmt.Sprintf("a second root; a shape has one root (indent it under %q)", p.root.Service)}
	case node.Async:
		return &ShapeError{Line: l.n, Col: l.indent + 1, Text: l.body, Msg: "the root cannot be an asynchronous \"~>\" edge"}
	default:
		p.root = node
	}
	p.open, p.indents = append(p.open, node), append(p.indents, l.indent)
	return nil
}

// place closes the nodes l is not inside of, and checks that l sits where
// a line may: exactly one step right of its parent or, moving left, on a
// level that a line above is on.
func (p *shapeParser) place(l shapeLine) error {
	closed := -1
	for len(p.open) > 0 && p.indents[len(p.indents)-1] >= l.indent {
		closed = p.indents[len(p.indents)-1]
		p.open, p.indents = p.open[:len(p.open)-1], p.indents[:len(p.indents)-1]
	}
	at := func(format string, args ...any) error {
		return &ShapeError{Line: l.n, Col: l.indent + 1, Text: l.body, Msg: fmt.Sprintf(format, args...)}
	}
	if closed >= 0 && closed != l.indent && len(p.open) > 0 {
		levels := append(slices.Clone(p.indents), closed)
		return at("indented %d spaces, which matches no level above (levels: %s)", l.indent, joinInts(levels))
	}
	if len(p.open) == 0 {
		return nil
	}
	by := l.indent - p.indents[len(p.indents)-1]
	if p.step == 0 {
		p.step = by
	}
	if by != p.step {
		return at("indented %d spaces under %q, but this shape indents each level by %d", by, p.open[len(p.open)-1].Service, p.step)
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func parseNode(l shapeLine) (*Shape, error) {
	node := &Shape{Line: l.n, Col: l.indent + 1}
	body := l.body
	if rest, ok := strings.CutPrefix(body, "~>"); ok {
		node.Async = true
		node.Col += len(body) - len(strings.TrimLeft(rest, " "))
		body = strings.TrimSpace(rest)
	}
	svc, op, hasOp := strings.Cut(body, ":")
	node.Service = strings.TrimSpace(svc)
	node.Operation = strings.TrimSpace(op)
	fail := func(format string, args ...any) error {
		return &ShapeError{Line: l.n, Col: node.Col, Text: l.body, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case node.Service == "":
		return nil, fail("missing service name")
	case strings.ContainsAny(node.Service, " \t>~"):
		return nil, fail("%q is not a service name (write \"service\" or \"service: operation\")", node.Service)
	case hasOp && node.Operation == "":
		return nil, fail("empty operation after \":\"")
	}
	return node, nil
}

// String draws the shape in the syntax it was parsed from.
func (s *Shape) String() string {
	var b strings.Builder
	var walk func(n *Shape, depth int)
	walk = func(n *Shape, depth int) {
		b.WriteString(strings.Repeat("  ", depth))
		if n.Async {
			b.WriteString("~> ")
		}
		b.WriteString(n.Service)
		if n.Operation != "" {
			b.WriteString(": " + n.Operation)
		}
		b.WriteByte('\n')
		for _, c := range n.Children {
			walk(c, depth+1)
		}
		if n.Open {
			b.WriteString(strings.Repeat("  ", depth+1) + "...\n")
		}
	}
	walk(s, 0)
	return b.String()
}

// Size counts the nodes of the shape.
func (s *Shape) Size() int {
	n := 1
	for _, c := range s.Children {
		n += c.Size()
	}
	return n
}

// Walk calls f on s and every node below it.
func (s *Shape) Walk(f func(*Shape)) {
	f(s)
	for _, c := range s.Children {
		c.Walk(f)
	}
}
