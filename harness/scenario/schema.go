package scenario

//go:generate go run ./cmd/genschema -o ../../scenarios/schema.json

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"sync"

	"github.com/invopop/jsonschema"
)

// typesSource is embedded so the schema carries the Go doc comments as
// descriptions without depending on the working directory at run time.
//
//go:embed types.go
var typesSource string

// SchemaID is the $id of scenarios/schema.json.
const SchemaID = "https://github.com/meshproof/meshproof/scenarios/schema.json"

// Schema returns the JSON Schema of scenario files, generated from the Go
// types so the two cannot drift (a test compares it with the committed
// scenarios/schema.json). Editors use it for completion and checking.
func Schema() ([]byte, error) {
	comments := docComments()
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		LookupComment: func(t reflect.Type, field string) string {
			if t.PkgPath() != reflect.TypeOf(Scenario{}).PkgPath() {
				return ""
			}
			if field == "" {
				return comments[t.Name()]
			}
			return comments[t.Name()+"."+field]
		},
	}
	s := r.Reflect(&Scenario{})
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

var (
	commentsOnce sync.Once
	commentMap   map[string]string
)

// docComments maps "Type" and "Type.Field" to their doc comments in types.go.
func docComments() map[string]string {
	commentsOnce.Do(func() {
		commentMap = map[string]string{}
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
	})
	return commentMap
}

func clean(s string) string { return strings.Join(strings.Fields(s), " ") }
