// Command healthcheck lets the scratch stand-in images answer the same
// compose healthcheck commands as the upstream images, so docker-compose.yml
// carries one healthcheck per service for both image sets. It is installed
// under the name of the upstream tool (curl, mongosh) and chooses what to do
// from that name, delegating to the stand-in's own probe subcommand.
//
//	curl [flags] URL                 -> localstack-standin probe URL
//	mongosh [flags]                  -> mongodb-standin probe 127.0.0.1:27017
//
// It understands nothing else of those tools' flags: it exists for the
// healthcheck lines only.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Where the stand-in images install their programs.
const (
	localstackStandin = "/usr/local/bin/localstack-standin"
	mongodbStandin    = "/usr/local/bin/mongodb-standin"
)

func main() {
	prog, args, err := plan(filepath.Base(os.Args[0]), os.Args[1:], os.Getenv("MONGODB_PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(2)
	}
	if err := syscall.Exec(prog, args, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "healthcheck: exec %s: %v\n", prog, err)
		os.Exit(1)
	}
}

// plan maps an upstream healthcheck command line to the stand-in's probe.
func plan(name string, args []string, mongoPort string) (string, []string, error) {
	switch name {
	case "curl":
		url := ""
		for _, a := range args {
			if strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://") {
				url = a
			}
		}
		if url == "" {
			return "", nil, fmt.Errorf("curl: no URL in %q", args)
		}
		return localstackStandin, []string{"localstack-standin", "probe", url}, nil
	case "mongosh":
		if mongoPort == "" {
			mongoPort = "27017"
		}
		return mongodbStandin, []string{"mongodb-standin", "probe", "127.0.0.1:" + mongoPort}, nil
	default:
		return "", nil, fmt.Errorf("unknown name %q (install as curl or mongosh)", name)
	}
}
