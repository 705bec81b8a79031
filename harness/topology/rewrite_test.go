package topology

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAddrs maps declared ports of the real compose file to loopback ports.
var fakeAddrs = map[string]string{
	"service-a:50051": "127.0.0.1:41001",
	"service-b:50051": "127.0.0.1:41002",
	"service-c:50051": "127.0.0.1:41003",
	"gateway:8080":    "127.0.0.1:41080",
	"rabbitmq:5672":   "127.0.0.1:45672",
	"mongodb:27017":   "127.0.0.1:47017",
	"postgres:5432":   "127.0.0.1:45432",
	"jaeger:4317":     "127.0.0.1:44317",
	"jaeger:4318":     "127.0.0.1:44318",
	"localstack:4566": "127.0.0.1:44566",
}

func fakeResolve(service string, port int) (string, bool) {
	a, ok := fakeAddrs[fmt.Sprintf("%s:%d", service, port)]
	return a, ok
}

func TestRewrite(t *testing.T) {
	cases := []struct{ in, want string }{
		// URL form
		{"http://jaeger:4318", "http://127.0.0.1:44318"},
		{"http://gateway:8080/api/greeting?x=1", "http://127.0.0.1:41080/api/greeting?x=1"},
		{"mongodb://mongodb:27017", "mongodb://127.0.0.1:47017"},
		{"amqp://guest:guest@rabbitmq:5672/", "amqp://guest:guest@127.0.0.1:45672/"},
		{"postgres://meshproof:meshproof@postgres:5432/meshproof?sslmode=disable", "postgres://meshproof:meshproof@127.0.0.1:45432/meshproof?sslmode=disable"},
		{"grpc://service-a:50051", "grpc://127.0.0.1:41001"},
		// a password that looks like a port, a user named like a service
		{"postgres://postgres:5432@postgres:5432/db", "postgres://postgres:5432@127.0.0.1:45432/db"},
		// bare host:port, alone and in lists
		{"service-b:50051", "127.0.0.1:41002"},
		{"service-b:50051,service-c:50051", "127.0.0.1:41002,127.0.0.1:41003"},
		{"service-b:50051, service-c:50051", "127.0.0.1:41002, 127.0.0.1:41003"},
		{"--addr=service-a:50051", "--addr=127.0.0.1:41001"},
		{"peers: [service-a:50051]", "peers: [127.0.0.1:41001]"},
		{"dial service-a:50051.", "dial 127.0.0.1:41001."},
		// key=value DSN
		{"host=postgres port=5432", "host=127.0.0.1 port=45432"},
		{"host=postgres port=5432 user=meshproof dbname=meshproof sslmode=disable", "host=127.0.0.1 port=45432 user=meshproof dbname=meshproof sslmode=disable"},
		{"dbname=x port=5432 host=postgres", "dbname=x port=45432 host=127.0.0.1"},
		{"host='postgres' port='5432'", "host='127.0.0.1' port='45432'"},
		// several forms in one value
		{"http://jaeger:4318 and service-a:50051", "http://127.0.0.1:44318 and 127.0.0.1:41001"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			assert.Equal(t, tc.want, Rewrite(tc.in, fakeResolve))
		})
	}
}

func TestRewriteLeavesOthersAlone(t *testing.T) {
	unchanged := []string{
		"",
		"info",
		":50051",                       // a listen address, no host
		"localhost:8080",               // not a service
		"127.0.0.1:8080",               // already an address
		"service-b:9999",               // undeclared port
		"unknown:50051",                // unknown service
		"xservice-b:50051",             // longer name
		"service-b:500510",             // longer port
		"service-b:50051abc",           // port glued to letters
		"service-b:50051-50060",        // a port range
		"service-b:50051:50051",        // a port mapping
		"service-b.example.com:50051",  // another host
		"http://example.com:4318/path", // external URL
		"http://user:service-b@x.org/", // a password that names a service
		"12:30",
		"host=postgres",                 // no port: not guessed
		"host=other port=5432",          // unknown host
		"host=postgres port=6543",       // undeclared port
		"host=postgres,other port=5432", // multi-host list
		"url?host=postgres&port=5432",   // not a DSN
		"Hello, from Service A!",
	}
	for _, s := range unchanged {
		t.Run(s, func(t *testing.T) {
			assert.Equal(t, s, Rewrite(s, fakeResolve))
		})
	}
}

func TestRewriteRealTopology(t *testing.T) {
	topo := loadReal(t)
	resolve := topo.Resolver(func(service string, port int) (string, bool) {
		return fmt.Sprintf("127.0.0.1:%d", 40000+port%10000), true
	})
	f := topo.Services["service-f"].Environment
	assert.Equal(t, "amqp://guest:guest@127.0.0.1:45672/", Rewrite(f["RABBITMQ_CONN"], resolve))
	assert.Equal(t, "mongodb://127.0.0.1:47017", Rewrite(f["MONGO_CONN"], resolve))
	assert.Equal(t, "postgres://meshproof:meshproof@127.0.0.1:45432/meshproof?sslmode=disable", Rewrite(f["POSTGRES_CONN"], resolve))
	assert.Equal(t, "http://127.0.0.1:44317", Rewrite(f["OTEL_EXPORTER_OTLP_ENDPOINT"], resolve))
	assert.Equal(t, "127.0.0.1:40051", Rewrite(topo.Services["service-a"].Environment["SERVICE_B_URL"], resolve))
	assert.Equal(t, "http://127.0.0.1:44566", Rewrite(topo.Services["service-h"].Environment["AWS_ENDPOINT_URL"], resolve))
	assert.Equal(t, ":50051", Rewrite(f["PORT"], resolve), "listen values are not references")
	assert.Equal(t, "service-b:1234", Rewrite("service-b:1234", resolve), "undeclared port of a known service")
	assert.Equal(t, "nowhere:50051", Rewrite("nowhere:50051", resolve))

	// Every env value in the real file that names another service is rewritten.
	for _, name := range topo.Names() {
		for k, v := range topo.Services[name].Environment {
			out := Rewrite(v, resolve)
			for _, other := range topo.Names() {
				for _, p := range topo.Services[other].Ports {
					require.NotContains(t, out, fmt.Sprintf("%s:%d", other, p), "%s %s=%s", name, k, v)
				}
			}
		}
	}
}
