package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestValidateExitCodes runs `meshproof validate` as the CLI does: a bad
// file exits 2 naming file:line:col and the field, a good one exits 0.
func TestValidateExitCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	bad := "../../harness/run/testdata/invalid/shape-unknown-service.yaml"
	var stdout, stderr bytes.Buffer
	code := Main(ctx, []string{"validate", bad}, &stdout, &stderr)
	assert.Equal(t, 2, code, stderr.String())
	assert.Contains(t, stderr.String(), bad+`:16:13: assert.traces[0].shape: unknown service "service-x"`)
	assert.Empty(t, stdout.String())

	good := "../../scenarios/smoke.yaml"
	stdout.Reset()
	stderr.Reset()
	code = Main(ctx, []string{"validate", good, bad}, &stdout, &stderr)
	assert.Equal(t, 2, code, "one bad file among good ones still exits 2")
	assert.Equal(t, good+": ok\n", stdout.String())

	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, 0, Main(ctx, []string{"validate", good}, &stdout, &stderr), stderr.String())
}
