// Command bench measures meshproof's load engine and assertions against
// their peers (hey, wrk, ghz) on this machine, prints a table and writes
// bench/results.json and bench/RESULTS.md. See issue 8 and `make bench`.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := dispatch(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func dispatch(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return cmdServe(args[1:])
		case "engine":
			return cmdEngine(args[1:])
		case "fixture":
			return cmdFixture(args[1:])
		}
	}
	return cmdRun(args)
}
