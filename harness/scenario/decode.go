package scenario

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// position is where a field's value starts in the file.
// block marks literal/folded scalars (|, >), whose text starts a line below:
// at textLine, each of its lines indented by indent spaces in the file.
type position struct {
	line, col int
	block     bool
	textLine  int
	indent    int
	// quoted is 1 for a quoted scalar, whose text starts after the quote.
	quoted int
}

// maxVisits bounds the nodes one file may expand to, so that alias bombs
// ("billion laughs") fail fast instead of exhausting memory.
const maxVisits = 200_000

// decoder walks a yaml.Node tree against the Go types by reflection. It is
// hand-written rather than yaml.v3's Decode with KnownFields because that
// stops at the first error and reports neither columns nor field paths.
type decoder struct {
	file   string
	lines  []string // the source, for where block scalars' text sits
	errs   ErrorList
	pos    map[string]position
	visits int
	tooBig bool
	// active holds the collections being decoded or merged, outermost
	// first: an alias or merge key reaching one of them is a loop.
	active map[*yaml.Node]bool
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

var durationType = reflect.TypeFor[Duration]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.visits++
	if d.visits > maxVisits {
		if !d.tooBig {
			d.tooBig = true
			d.fail(n, path, "document expands to more than %d nodes (alias loop or bomb?)", maxVisits)
		}
		return
	}
	n, orig, ok := d.resolve(n, path)
	if !ok {
		return
	}
	if orig.Kind == yaml.MappingNode || orig.Kind == yaml.SequenceNode {
		d.active[orig] = true
		defer delete(d.active, orig)
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = d.position(n, orig)
	}
	if isNull(n) && v.Kind() != reflect.String {
		return // absent: keep the zero value
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", describe(n))
			return
		}
		if isNull(n) {
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32, reflect.Bool:
		d.scalar(n, v, path)
	default:
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

// resolve follows an alias: it returns the node to decode (the alias's
// target, positioned at the alias use) and the target itself, whose
// identity detects loops. ok is false when the alias cannot be followed.
func (d *decoder) resolve(n *yaml.Node, path string) (use, orig *yaml.Node, ok bool) {
	if n.Kind != yaml.AliasNode {
		return n, n, true
	}
	if n.Alias == nil {
		d.fail(n, path, "unknown alias %q", n.Value)
		return nil, nil, false
	}
	if d.active[n.Alias] {
		d.fail(n, path, "alias *%s refers to a node that contains it (a loop)", n.Value)
		return nil, nil, false
	}
	// Positions point at the alias use, not the anchor.
	target := *n.Alias
	target.Line, target.Column = n.Line, n.Column
	return &target, n.Alias, true
}

// position records where n's value is; orig is the node the text was read
// from (the anchor, for an alias), which is where a block scalar's lines are.
func (d *decoder) position(n, orig *yaml.Node) position {
	p := position{line: n.Line, col: n.Column}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		p.quoted = 1
	}
	if orig.Kind != yaml.ScalarNode || orig.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		return p
	}
	p.block, p.textLine = true, orig.Line+1
	p.indent = blockIndent(d.lines, orig.Line, orig.Value)
	return p
}

// blockIndent is how many spaces the file puts before each line of the
// block scalar whose indicator (|, >) is on line headerLine: the first line
// with text, less the spaces the value itself keeps at its start.
func blockIndent(lines []string, headerLine int, value string) int {
	kept := 0
	for l := range strings.SplitSeq(value, "\n") {
		if strings.TrimSpace(l) != "" {
			kept = len(l) - len(strings.TrimLeft(l, " "))
			break
		}
	}
	for i := headerLine; i < len(lines); i++ { // lines[headerLine] is the next line
		l := strings.TrimRight(lines[i], "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		return max(0, len(l)-len(strings.TrimLeft(l, " "))-kept)
	}
	return 0
}

// scalar decodes a number or a boolean, refusing strings that look like one.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.fail(n, path, "%s is not an integer", describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "%s is out of range", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64, reflect.Float32:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.fail(n, path, "%s is not a number", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "%s is not true or false", describe(n))
			return
		}
		v.SetBool(b)
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a duration such as 30s or 250ms, got %s", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil && n.Value == "0" {
		dur, err = 0, nil
	}
	if err != nil {
		d.fail(n, path, "%q is not a duration (write e.g. 30s, 1m30s, 250ms)", n.Value)
		return
	}
	if dur < 0 {
		d.fail(n, path, "%q: a duration must not be negative", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// pair is one key/value of a mapping after merge keys are expanded.
type pair struct{ key, value *yaml.Node }

// pairs returns the entries of a mapping with YAML merge keys (<<) applied:
// explicit keys win over merged ones, earlier merges over later ones.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	d.visits++
	if d.visits > maxVisits {
		return nil
	}
	var explicit, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path)...)
			continue
		}
		explicit = append(explicit, pair{k, val})
	}
	seen := map[string]*yaml.Node{}
	out := make([]pair, 0, len(explicit)+len(merged))
	for _, p := range explicit {
		if p.key.Kind != yaml.ScalarNode {
			d.fail(p.key, path, "a key must be a plain string, got %s", describe(p.key))
			continue
		}
		if first, dup := seen[p.key.Value]; dup {
			d.fail(p.key, join(path, p.key.Value), "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[p.key.Value] = p.key
		out = append(out, p)
	}
	for _, p := range merged {
		if p.key.Kind != yaml.ScalarNode {
			continue
		}
		if _, dup := seen[p.key.Value]; dup {
			continue
		}
		seen[p.key.Value] = p.key
		out = append(out, p)
	}
	return out
}

// merge returns the entries a merge key's value brings in. A merge that
// reaches a mapping it is part of, or a list of sources that contains
// itself through an alias, is reported as a loop rather than followed.
func (d *decoder) merge(val *yaml.Node, path string) []pair {
	var out []pair
	for _, m := range d.mergeSources(val, path, map[*yaml.Node]bool{}) {
		switch {
		case m.Kind != yaml.MappingNode:
			d.fail(val, path, "merge (<<) wants a mapping or a list of mappings")
		case d.active[m]:
			d.fail(val, path, "merge (<<) includes a mapping that contains it (a loop)")
		default:
			d.active[m] = true
			out = append(out, d.pairs(m, path)...)
			delete(d.active, m)
		}
	}
	return out
}

// mergeSources flattens a merge key's value (a mapping, an alias of one, or
// a list of those) into the mappings to merge, in order.
// seen holds the lists on the way down.
func (d *decoder) mergeSources(n *yaml.Node, path string, seen map[*yaml.Node]bool) []*yaml.Node {
	use := n
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, path, "unknown alias %q", n.Value)
			return nil
		}
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		return []*yaml.Node{n}
	}
	if seen[n] {
		d.fail(use, path, "merge (<<) list contains itself through an alias (a loop)")
		return nil
	}
	seen[n] = true
	defer delete(seen, n) // the same list twice side by side is no loop
	var out []*yaml.Node
	for _, c := range n.Content {
		out = append(out, d.mergeSources(c, path, seen)...)
	}
	return out
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	info := fieldsOf(v.Type())
	set := map[string]bool{}
	for _, p := range d.pairs(n, path) {
		name := p.key.Value
		idx, ok := info.byName[name]
		if !ok {
			d.fail(p.key, join(path, name), "unknown field %q (want one of: %s)", name, strings.Join(info.names, ", "))
			continue
		}
		set[name] = true
		d.decode(p.value, v.Field(idx), join(path, name))
	}
	for _, req := range info.required {
		if !set[req] {
			d.fail(n, join(path, req), "required field is missing")
		}
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n, path, "cannot decode into %s", v.Type())
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, p := range d.pairs(n, path) {
		key := reflect.New(v.Type().Key()).Elem()
		key.SetString(p.key.Value)
		val := reflect.New(v.Type().Elem()).Elem()
		d.decode(p.value, val, join(path, p.key.Value))
		m.SetMapIndex(key, val)
	}
	v.Set(m)
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node in an error message: the scalar quoted, or its kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "an unexpected node"
}

// structInfo is the yaml view of a struct type.
type structInfo struct {
	byName   map[string]int
	names    []string // sorted, for "want one of"
	required []string
}

var structCache sync.Map // reflect.Type -> *structInfo

func fieldsOf(t reflect.Type) *structInfo {
	if c, ok := structCache.Load(t); ok {
		return c.(*structInfo)
	}
	info := &structInfo{byName: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		info.byName[name] = i
		info.names = append(info.names, name)
		for opt := range strings.SplitSeq(f.Tag.Get("jsonschema"), ",") {
			if opt == "required" {
				info.required = append(info.required, name)
			}
		}
	}
	sort.Strings(info.names)
	structCache.Store(t, info)
	return info
}
