//go:build tools

// Package jaeger pins the Jaeger binary (cmd/jaeger, Jaeger v2) that the
// local backend and the offline image run. It lives in its own module so
// Jaeger's large dependency graph never enters the main module's; toolbin
// builds it once per machine, keyed by the version required in go.mod.
package jaeger

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
