// Command genschema writes scenarios/schema.json from the scenario Go types.
// Run it (or `go generate ./harness/scenario`) after changing
// harness/scenario/types.go; TestSchemaUpToDate fails until you do.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/meshproof/meshproof/harness/scenario"
)

func main() {
	out := flag.String("o", "scenarios/schema.json", "file to write")
	flag.Parse()
	b, err := scenario.Schema()
	if err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
}
