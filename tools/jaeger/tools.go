//go:build tools

// Package jaeger pins the Jaeger all-in-one binary the local and offline-image
// paths run. It lives in its own module so Jaeger's large dependency graph
// never enters the main module's.
package jaeger

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
