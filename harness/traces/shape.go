package traces

import (
	"fmt"
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
}

// ParseShape reads an indented service tree. Indentation may be any
// consistent number of spaces; tabs are refused because their width is a
// matter of taste and would make depth ambiguous.
func ParseShape(text string) (*Shape, error) {
	type open struct {
		indent int
		node   *Shape
	}
	var root *Shape
	var stack []open
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.ContainsRune(line, '\t') {
			return nil, fmt.Errorf("shape line %d %q: indent with spaces, not tabs", n, strings.TrimSpace(line))
		}
		body := strings.TrimLeft(line, " ")
		indent := len(line) - len(body)
		body = strings.TrimSpace(body)
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		if body == "..." {
			if len(stack) == 0 {
				return nil, fmt.Errorf("shape line %d: \"...\" needs a parent node above it", n)
			}
			stack[len(stack)-1].node.Open = true
			continue
		}
		node, err := parseNode(body, n)
		if err != nil {
			return nil, err
		}
		if len(stack) == 0 {
			if root != nil {
				return nil, fmt.Errorf("shape line %d %q: a second root; a shape has one root (indent it under %q)", n, body, root.Service)
			}
			if node.Async {
				return nil, fmt.Errorf("shape line %d %q: the root cannot be an asynchronous \"~>\" edge", n, body)
			}
			root = node
		} else {
			parent := stack[len(stack)-1].node
			parent.Children = append(parent.Children, node)
		}
		stack = append(stack, open{indent, node})
	}
	if root == nil {
		return nil, fmt.Errorf("shape is empty: write the root service on the first line")
	}
	return root, nil
}

func parseNode(body string, line int) (*Shape, error) {
	node := &Shape{Line: line}
	if rest, ok := strings.CutPrefix(body, "~>"); ok {
		node.Async = true
		body = strings.TrimSpace(rest)
	}
	svc, op, hasOp := strings.Cut(body, ":")
	node.Service = strings.TrimSpace(svc)
	node.Operation = strings.TrimSpace(op)
	switch {
	case node.Service == "":
		return nil, fmt.Errorf("shape line %d %q: missing service name", line, body)
	case strings.ContainsAny(node.Service, " \t>~"):
		return nil, fmt.Errorf("shape line %d %q: %q is not a service name (write \"service\" or \"service: operation\")", line, body, node.Service)
	case hasOp && node.Operation == "":
		return nil, fmt.Errorf("shape line %d %q: empty operation after \":\"", line, body)
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
