package bench

import (
	"encoding/hex"
	"math/rand/v2"
	"strconv"
)

// GreetingShape is the service tree of one GET /api/greeting through the
// greeting mesh, as a scenario writes it.
const GreetingShape = `gateway
  service-a
    service-b
      service-d
        ~> service-f
      service-e
        service-g
        service-h
    service-c
`

// synthSpan is one span of the synthetic greeting trace: who emits it, its
// parent (an index into the same list, -1 for the load's unexported span),
// its kind and its place in time (µs from the trace's start).
type synthSpan struct {
	service, name  string
	parent, kind   int
	startUs, durUs int
}

// greetingSpans are the 18 spans one request through the mesh produces:
// a server span per hop, a client span per call, the RabbitMQ producer and
// consumer, and the consumer's store write.
var greetingSpans = []synthSpan{
	{"gateway", "GET /api/greeting", -1, 2, 0, 9000},                        // 0
	{"gateway", "greeting.v3.GreetingService/Greeting", 0, 3, 100, 8800},    // 1
	{"service-a", "greeting.v3.GreetingService/Greeting", 1, 2, 200, 8600},  // 2
	{"service-a", "greeting.v3.GreetingService/Greeting", 2, 3, 300, 7000},  // 3 → b
	{"service-a", "greeting.v3.GreetingService/Greeting", 2, 3, 300, 2000},  // 4 → c
	{"service-b", "greeting.v3.GreetingService/Greeting", 3, 2, 400, 6800},  // 5
	{"service-b", "greeting.v3.GreetingService/Greeting", 5, 3, 500, 2500},  // 6 → d
	{"service-b", "greeting.v3.GreetingService/Greeting", 5, 3, 500, 6000},  // 7 → e
	{"service-d", "greeting.v3.GreetingService/Greeting", 6, 2, 600, 2200},  // 8
	{"service-d", "service-d.greeting publish", 8, 4, 700, 1500},            // 9
	{"service-f", "service-d.greeting process", 9, 5, 2500, 3000},           // 10
	{"service-f", "insert service-f.messages", 10, 3, 2600, 1200},           // 11
	{"service-e", "greeting.v3.GreetingService/Greeting", 7, 2, 600, 5600},  // 12
	{"service-e", "greeting.v3.GreetingService/Greeting", 12, 3, 700, 2500}, // 13 → g
	{"service-e", "greeting.v3.GreetingService/Greeting", 12, 3, 700, 5000}, // 14 → h
	{"service-g", "greeting.v3.GreetingService/Greeting", 13, 2, 800, 2200}, // 15
	{"service-h", "greeting.v3.GreetingService/Greeting", 14, 2, 800, 4700}, // 16
	{"service-c", "greeting.v3.GreetingService/Greeting", 4, 2, 400, 1700},  // 17
}

// GreetingSpanCount is the number of spans in one synthetic trace.
var GreetingSpanCount = len(greetingSpans)

// SyntheticTrace is one generated greeting trace.
type SyntheticTrace struct {
	TraceID string
	// ResourceSpans is the JSON array of OTLP resourceSpans, one resource
	// per service, ready to embed in an OTLP/HTTP request or an api_v3
	// answer ({"result": {"resourceSpans": …}}).
	ResourceSpans []byte
}

// APIv3 is the trace as Jaeger's GET /api/v3/traces/{id} answers it.
func (t SyntheticTrace) APIv3() []byte {
	out := make([]byte, 0, len(t.ResourceSpans)+32)
	out = append(out, `{"result":{"resourceSpans":`...)
	out = append(out, t.ResourceSpans...)
	return append(out, "}}"...)
}

// GenerateGreetingTraces makes n traces of the greeting mesh's shape with
// random ids, starting at startUnixNs one millisecond apart. The same seed
// gives the same traces.
func GenerateGreetingTraces(n int, startUnixNs int64, seed uint64) []SyntheticTrace {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]SyntheticTrace, n)
	var idb [16]byte
	ids := make([]string, len(greetingSpans))
	for i := range out {
		fill(rng, idb[:])
		traceID := hex.EncodeToString(idb[:])
		for j := range ids {
			fill(rng, idb[:8])
			ids[j] = hex.EncodeToString(idb[:8])
		}
		fill(rng, idb[:8])
		loadParent := hex.EncodeToString(idb[:8]) // the load's span, never exported
		t0 := startUnixNs + int64(i)*int64(1e6)
		out[i] = SyntheticTrace{TraceID: traceID, ResourceSpans: resourceSpans(traceID, ids, loadParent, t0)}
	}
	return out
}

func fill(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8 && i+k < len(b); k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
}

// resourceSpans writes one trace's spans grouped by service, in OTLP JSON.
func resourceSpans(traceID string, ids []string, loadParent string, t0 int64) []byte {
	b := make([]byte, 0, 6000)
	b = append(b, '[')
	first := true
	done := map[string]bool{}
	for _, s := range greetingSpans {
		if done[s.service] {
			continue
		}
		done[s.service] = true
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"`...)
		b = append(b, s.service...)
		b = append(b, `"}}]},"scopeSpans":[{"scope":{"name":"meshproof-bench"},"spans":[`...)
		firstSpan := true
		for j, sp := range greetingSpans {
			if sp.service != s.service {
				continue
			}
			if !firstSpan {
				b = append(b, ',')
			}
			firstSpan = false
			parent := loadParent
			if sp.parent >= 0 {
				parent = ids[sp.parent]
			}
			start := t0 + int64(sp.startUs)*1000
			b = append(b, `{"traceId":"`...)
			b = append(b, traceID...)
			b = append(b, `","spanId":"`...)
			b = append(b, ids[j]...)
			b = append(b, `","parentSpanId":"`...)
			b = append(b, parent...)
			b = append(b, `","name":"`...)
			b = append(b, sp.name...)
			b = append(b, `","kind":`...)
			b = strconv.AppendInt(b, int64(sp.kind), 10)
			b = append(b, `,"startTimeUnixNano":"`...)
			b = strconv.AppendInt(b, start, 10)
			b = append(b, `","endTimeUnixNano":"`...)
			b = strconv.AppendInt(b, start+int64(sp.durUs)*1000, 10)
			b = append(b, `","attributes":[{"key":"rpc.system","value":{"stringValue":"grpc"}}],"status":{}}`...)
		}
		b = append(b, "]}]}"...)
	}
	return append(b, ']')
}

// OTLPRequest joins traces into one OTLP/HTTP JSON export request body.
func OTLPRequest(ts []SyntheticTrace) []byte {
	size := 32
	for _, t := range ts {
		size += len(t.ResourceSpans)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"resourceSpans":[`...)
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, t.ResourceSpans[1:len(t.ResourceSpans)-1]...) // strip [ ]
	}
	return append(b, "]}"...)
}
