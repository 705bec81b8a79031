package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/mesh/config"
	"github.com/meshproof/meshproof/mesh/role"
	"github.com/meshproof/meshproof/mesh/telemetry"
)

func env(kv map[string]string) config.LookupFunc {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func runWith(t *testing.T, args []string, kv map[string]string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, env(kv), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestInvalidConfigurationExits2NamingTheVariable(t *testing.T) {
	cases := []struct {
		name, role, variable, value string
	}{
		{"bad duration", "service-a", "CALL_TIMEOUT", "five seconds"},
		{"bad port", "service-a", "PORT", "http://x"},
		{"bad peer address", "service-b", "SERVICE_E_URL", "service-e"},
		{"bad mongo url", "service-c", "MONGO_CONN", "mysql://db"},
		{"bad amqp url", "service-d", "RABBITMQ_CONN", "::nope"},
		{"bad postgres dsn", "service-f", "POSTGRES_CONN", "postgres://u@host:notaport/db"},
		{"bad endpoint", "service-h", "AWS_ENDPOINT_URL", "localstack:4566"},
		{"bad log level", "gateway", "LOG_LEVEL", "chatty"},
		{"bad bool", "service-a", "SEQUENTIAL_CALLS", "sometimes"},
		{"bad metrics port", "service-g", "METRICS_PORT", "99999"},
		{"bad otlp protocol", "service-a", "OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]string{tc.variable: tc.value}
			if tc.variable == "OTEL_EXPORTER_OTLP_PROTOCOL" {
				kv["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4317"
			}
			code, _, stderr := runWith(t, []string{"serve", "--role", tc.role}, kv)
			assert.Equal(t, 2, code)
			assert.Contains(t, stderr, tc.variable)
		})
	}
}

func TestUnknownRoleExits2(t *testing.T) {
	code, _, stderr := runWith(t, []string{"serve", "--role", "service-z"}, nil)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--role")
	code, _, _ = runWith(t, []string{"frobnicate"}, nil)
	assert.Equal(t, 2, code)
}

func TestVersion(t *testing.T) {
	code, out, _ := runWith(t, []string{"version"}, nil)
	assert.Equal(t, 0, code)
	assert.NotEmpty(t, out)
}

func TestProbe(t *testing.T) {
	cfg, err := config.Load("service-c", env(nil))
	require.NoError(t, err)
	cfg = cfg.WithoutSinks()
	cfg.Listen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	in, err := role.Start(context.Background(), cfg, role.WithTelemetry(telemetry.WithLogOutput(io.Discard)))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, in.Stop(context.Background())) })

	code, _, stderr := runWith(t, []string{"probe", in.Addr()}, nil)
	assert.Equal(t, 0, code, stderr)
	code, _, stderr = runWith(t, []string{"probe", "http://" + in.MetricsAddr() + "/metrics"}, nil)
	assert.Equal(t, 0, code, stderr)

	// A port nobody listens on fails within the probe timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close())
	start := time.Now()
	code, _, _ = runWith(t, []string{"probe", dead}, nil)
	assert.Equal(t, 1, code)
	assert.Less(t, time.Since(start), 3*time.Second)
	code, _, _ = runWith(t, []string{"probe", "http://" + dead + "/healthz"}, nil)
	assert.Equal(t, 1, code)
}
