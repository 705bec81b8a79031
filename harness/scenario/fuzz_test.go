package scenario

import (
	"errors"
	"os"
	"testing"
)

// FuzzLoad checks that no input panics the decoder and that every error
// carries a line, so a user can always find the problem.
// Seeds: testdata/fuzz/FuzzLoad plus the examples below.
func FuzzLoad(f *testing.F) {
	if b, err := os.ReadFile("testdata/fanout-load.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("name: x\nenvironment: { compose: c.yml }\nload: { users: x, duration: 15 sec }\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("name: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("f.yaml", data)
		if err == nil {
			if sc == nil {
				t.Fatal("nil scenario without an error")
			}
			return
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("want a non-empty ErrorList, got %T %v", err, err)
		}
		for _, e := range list {
			if e.Line <= 0 {
				t.Fatalf("error without a line for parseable YAML: %v", e)
			}
		}
	})
}
