package config

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lookup(kv map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestNormalizeListen(t *testing.T) {
	for in, want := range map[string]string{":50051": ":50051", "50051": ":50051", "127.0.0.1:9464": "127.0.0.1:9464", "0": ":0"} {
		got, err := NormalizeListen(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"http://x:1", "abc", ":70000", "host:"} {
		_, err := NormalizeListen(bad)
		assert.Error(t, err, bad)
	}
}

func TestSeedDefaults(t *testing.T) {
	c, err := Load("service-a", lookup(nil))
	require.NoError(t, err)
	assert.Equal(t, ":50051", c.Listen)
	assert.Equal(t, ":9464", c.MetricsListen)
	assert.Equal(t, "Service A", c.ServiceName)
	assert.Equal(t, "Hello, from Service A!", c.Greeting)
	assert.Equal(t, []Peer{{"service-b", "service-b:50051"}, {"service-c", "service-c:50051"}}, c.Peers)
	assert.Equal(t, 5*time.Second, c.CallTimeout)
	assert.False(t, c.OTLP, "no endpoint, no exporter")
	assert.Nil(t, c.Mongo)

	g, err := Load(Gateway, lookup(map[string]string{"PORT": "8081", "SERVICE_A_URL": "127.0.0.1:1234", "LOG_LEVEL": "debug"}))
	require.NoError(t, err)
	assert.Equal(t, ":8081", g.Listen)
	assert.Equal(t, "127.0.0.1:1234", g.Peers[0].Addr)
	assert.Equal(t, slog.LevelDebug, g.LogLevel)
}

func TestRoleSinks(t *testing.T) {
	f, err := Load("service-f", lookup(map[string]string{
		"POSTGRES_CONN": "host=127.0.0.1 port=5432 user=meshproof dbname=meshproof", "QUEUE_NAME": "q",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	}))
	require.NoError(t, err)
	require.NotNil(t, f.AMQP)
	assert.True(t, f.AMQP.Consume)
	assert.Equal(t, "q", f.AMQP.Queue)
	assert.Equal(t, &Mongo{URI: DefaultMongo, Database: "service-f", Collection: "messages"}, f.Mongo)
	assert.NotNil(t, f.Postgres)
	assert.True(t, f.OTLP)
	assert.Equal(t, "grpc", f.OTLPProtocol)

	h, err := Load("service-h", lookup(nil))
	require.NoError(t, err)
	assert.Equal(t, "greetings-raw", h.S3.Bucket)
	assert.Equal(t, "greetings", h.Mongo.Collection)

	d, err := Load("service-d", lookup(nil))
	require.NoError(t, err)
	assert.False(t, d.AMQP.Consume)
	assert.Nil(t, d.WithoutSinks().AMQP)
}

func TestEveryBadVariableIsNamed(t *testing.T) {
	_, err := Load("service-b", lookup(map[string]string{"CALL_TIMEOUT": "-1s", "SERVICE_D_URL": "nohost"}))
	require.Error(t, err)
	var names []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ee *EnvError
		require.True(t, errors.As(e, &ee))
		names = append(names, ee.Var)
	}
	assert.ElementsMatch(t, []string{"CALL_TIMEOUT", "SERVICE_D_URL"}, names)
}

func TestParseRole(t *testing.T) {
	r, err := ParseRole("service-h")
	require.NoError(t, err)
	assert.Equal(t, "SERVICE_H_URL", r.URLVar())
	_, err = ParseRole("service-x")
	assert.ErrorContains(t, err, "--role")
}
