// Command genschema writes scenarios/schema.json from the scenario Go types
// and their doc comments. Run it (or `go generate ./harness/scenario`) after
// changing harness/scenario/types.go; TestSchemaUpToDate fails until you do.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	types := flag.String("types", "harness/scenario/types.go", "the scenario types' source, for descriptions")
	out := flag.String("o", "scenarios/schema.json", "file to write")
	flag.Parse()
	if err := run(*types, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
}

func run(typesFile, out string) error {
	src, err := os.ReadFile(typesFile)
	if err != nil {
		return fmt.Errorf("read types: %w", err)
	}
	b, err := Schema(string(src))
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
