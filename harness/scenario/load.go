package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and strictly decodes a scenario file. Problems come back as an
// ErrorList (use errors.As with *Error or ErrorList) naming file:line:column
// and the field path. Load checks the file on its own; Validate checks it
// against a topology.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes scenario YAML read from file (used in messages only).
func Parse(file string, data []byte) (sc *Scenario, err error) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a scenario file must
		// never take the harness down.
		if r := recover(); r != nil {
			sc, err = nil, ErrorList{{File: file, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrorList{{File: file, Line: 1, Column: 1, Msg: "the file is empty"}}
		}
		return nil, syntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		line, col := extra.Line, extra.Column
		if len(extra.Content) > 0 {
			line, col = extra.Content[0].Line, extra.Content[0].Column
		}
		return nil, ErrorList{{File: file, Line: line, Column: col, Msg: "a scenario file holds one YAML document; found a second"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, ErrorList{{File: file, Line: 1, Column: 1, Msg: "the file is empty"}}
		}
		root = root.Content[0]
	}
	sc = &Scenario{}
	d := &decoder{file: file, lines: strings.Split(string(data), "\n"), pos: map[string]position{}, active: map[*yaml.Node]bool{}}
	d.decode(root, reflect.ValueOf(sc).Elem(), "")
	sc.File = file
	sc.pos = d.pos
	if len(d.errs) > 0 {
		sortErrors(d.errs)
		return nil, d.errs
	}
	return sc, nil
}

func syntaxError(file string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return ErrorList{{File: file, Line: line, Msg: "invalid YAML: " + m[2]}}
	}
	// yaml.v3 leaves the line out when its (0-based) mark is 0: line 1.
	return ErrorList{{File: file, Line: 1, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}}
}

func sortErrors(l ErrorList) {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
}

// Pos returns where the value of fieldPath (e.g. "assert.traces[0].shape")
// starts in the file. For a path that was not written (a default), it
// returns the position of the nearest enclosing field that was. For block
// scalars (shape: |) it is the line of the "|"; the text starts one line
// below. 0, 0 when unknown (a Scenario built in code).
func (s *Scenario) Pos(fieldPath string) (line, col int) {
	for p := fieldPath; ; {
		if pos, ok := s.pos[p]; ok {
			return pos.line, pos.col
		}
		if p == "" {
			return 0, 0
		}
		p = parentPath(p)
	}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Errorf makes an *Error located at fieldPath, for validation done outside
// this package (trace shapes, thresholds) that must still point at a line.
func (s *Scenario) Errorf(fieldPath, format string, args ...any) *Error {
	line, col := s.Pos(fieldPath)
	return &Error{File: s.File, Line: line, Column: col, Field: fieldPath, Msg: fmt.Sprintf(format, args...)}
}

// ErrorfLine is Errorf for a problem on a given line of a multi-line value,
// such as line 3 of a trace shape: lineInValue counts from 1 at the first
// line of the text (the line after "|" for block scalars).
func (s *Scenario) ErrorfLine(fieldPath string, lineInValue int, format string, args ...any) *Error {
	return s.ErrorfAt(fieldPath, lineInValue, 0, format, args...)
}

// ErrorfAt is Errorf for a problem at line lineInValue, column colInValue
// (both from 1) of a field's text, such as a service on line 3 of a trace
// shape. For a block scalar (shape: |) it points at that spot in the file;
// for a value on one line, at the column in it (plain or quoted); otherwise
// at the field. colInValue 0 leaves the column out.
func (s *Scenario) ErrorfAt(fieldPath string, lineInValue, colInValue int, format string, args ...any) *Error {
	e := s.Errorf(fieldPath, format, args...)
	pos, ok := s.pos[fieldPath]
	switch {
	case !ok || lineInValue <= 0:
	case pos.block:
		e.Line, e.Column = pos.textLine+lineInValue-1, 0
		if colInValue > 0 {
			e.Column = pos.indent + colInValue
		}
	case lineInValue == 1 && colInValue > 0:
		e.Column = pos.col + pos.quoted + colInValue - 1
	}
	return e
}

// ComposePath finds environment.compose relative to the scenario file's
// directory or, failing that, one of its parents — so scenarios/x.yaml can
// say "docker-compose.yml" for the file at the repository root.
func (s *Scenario) ComposePath() (string, error) {
	c := s.Environment.Compose
	if c == "" {
		return "", s.Errorf("environment.compose", "required field is missing")
	}
	if filepath.IsAbs(c) {
		if _, err := os.Stat(c); err != nil {
			return "", s.Errorf("environment.compose", "%v", err)
		}
		return c, nil
	}
	dir, err := filepath.Abs(filepath.Dir(s.File))
	if err != nil {
		return "", s.Errorf("environment.compose", "%v", err)
	}
	start := dir
	for {
		p := filepath.Join(dir, c)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", s.Errorf("environment.compose", "%q not found in %s or its parents", c, start)
		}
		dir = parent
	}
}

// Summary is what `meshproof list` shows of a scenario.
type Summary struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	Description string `json:"description,omitempty"`
	// Services selected by environment.services; empty means all.
	Services []string `json:"services,omitempty"`
	// Err is set when the file does not load; it is listed, not skipped,
	// so a broken scenario is noticed.
	Err error `json:"-"`
}

// List loads every *.yaml / *.yml scenario in dir (not recursive), sorted by
// file name. Files that fail to load are returned with Err set.
func List(dir string) ([]Summary, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list scenarios: %w", err)
	}
	var out []Summary
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		sc, err := Load(p)
		if err != nil {
			out = append(out, Summary{Name: strings.TrimSuffix(e.Name(), ext), File: p, Err: err})
			continue
		}
		out = append(out, Summary{Name: sc.Name, File: p, Description: sc.Description, Services: sc.Environment.Services})
	}
	return out, nil
}
