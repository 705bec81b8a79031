package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/meshproof/meshproof/harness/scenario"
)

// SchemaID is the $id of scenarios/schema.json.
const SchemaID = "https://github.com/meshproof/meshproof/scenarios/schema.json"

// Schema returns the JSON Schema of scenario files, generated from the Go
// types so the two cannot drift (a test compares it with the committed
// scenarios/schema.json). Editors use it for completion and checking.
func Schema(typesSource string) ([]byte, error) {
	comments := docComments(typesSource)
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		Mapper:                     durationSchema,
		LookupComment: func(t reflect.Type, field string) string {
			if t.PkgPath() != reflect.TypeFor[scenario.Scenario]().PkgPath() {
				return ""
			}
			if field == "" {
				return comments[t.Name()]
			}
			return comments[t.Name()+"."+field]
		},
	}
	s := r.Reflect(&scenario.Scenario{})
	s.Definitions["Duration"] = durationDef()
	s.ID = SchemaID
	s.Title = "meshproof scenario"
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "p(99) < 250ms" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// docComments maps "Type" and "Type.Field" to their doc comments in types.go.
func docComments(typesSource string) map[string]string {
	commentMap := map[string]string{}
	func() {
		f, err := parser.ParseFile(token.NewFileSet(), "types.go", typesSource, parser.ParseComments)
		if err != nil {
			return // descriptions are a nicety; the schema stays valid without
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				ts, ok := spec.(*ast.TypeSpec)
				if !ok {
					continue
				}
				doc := ts.Doc
				if doc == nil {
					doc = gd.Doc
				}
				commentMap[ts.Name.Name] = clean(doc.Text())
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					text := fld.Doc.Text()
					if text == "" {
						text = fld.Comment.Text()
					}
					for _, n := range fld.Names {
						if text != "" {
							commentMap[ts.Name.Name+"."+n.Name] = clean(text)
						}
					}
				}
			}
		}
	}()
	return commentMap
}

func clean(s string) string { return strings.Join(strings.Fields(s), " ") }

// durationSchema makes every scenario.Duration a reference to one
// definition, written here rather than as a method on the type so the
// shipped binaries do not link the schema library.
func durationSchema(t reflect.Type) *jsonschema.Schema {
	if t != reflect.TypeFor[scenario.Duration]() {
		return nil
	}
	return &jsonschema.Schema{Ref: "#/$defs/Duration"}
}

// durationDef describes scenario.Duration as the string it is written as.
func durationDef() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "string",
		Pattern:     `^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$`,
		Description: "A duration: a number and a unit (ns, us, ms, s, m, h), e.g. 30s, 1m30s, 250ms.",
		Examples:    []any{"30s", "250ms", "1m30s"},
	}
}
