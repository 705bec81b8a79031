// Package defects is the mesh's catalogue of deliberate bugs. A harness is
// only as good as the failures it catches: each defect here names the
// shipped scenario and the exact assertions that must turn red when it is
// switched on, and e2e/defects_test.go runs every one of them live.
//
// The hooks are compiled in only with `go build -tags defects`
// (bin/greeting-defects); in the default build Active is the constant false,
// so every `if defects.Active(...)` branch is dead code the compiler drops.
// The catalogue itself (this file) has no build tag, so the e2e test can read
// it from a default build.
package defects

// EnvVar names the defect to switch on (one per process).
const EnvVar = "GREETING_DEFECT"

// Names of the defects, used by the hooks and the catalogue alike.
const (
	FDoubleStore         = "f-double-store"
	FAckBeforeStore      = "f-ack-before-store"
	DNoTraceHeaders      = "d-no-trace-headers"
	ESkipsH              = "e-skips-h"
	CErrorLog            = "c-error-log"
	ALogNoTraceID        = "a-log-no-trace-id"
	BSlow                = "b-slow"
	FStallsAfter100      = "f-stalls-after-100"
	FConsumedTwice       = "f-consumed-counts-twice"
	Gateway200OnFailure  = "gateway-200-on-peer-failure"
	HWrongS3Prefix       = "h-wrong-s3-prefix"
	FLedgerWithoutMongo  = "f-ledger-without-mongo"
	GatewayBlamesService = "gateway-blames-upstream"
)

// Assertion is one result of a scenario's report, as the report names it.
type Assertion struct {
	// Kind is the result's kind (load, traces, metrics, logs, data).
	Kind string
	// Name is the result's name exactly as in the report.
	Name string
}

// Defect is one entry of the catalogue.
type Defect struct {
	// Name is the value of GREETING_DEFECT that switches it on.
	Name string
	// Service is the compose service whose process carries the defect;
	// GREETING_DEFECT is set on that service only.
	Service string
	// Description says in one line what goes wrong.
	Description string
	// Scenario is the shipped scenario (scenarios/<name>.yaml) that must
	// catch it.
	Scenario string
	// MustFail are the assertions that must turn red, and nothing else.
	MustFail []Assertion
}

// Assertion names of the shipped scenarios the catalogue refers to; kept
// here once so a renamed assertion breaks one line, not many.
var (
	fanoutMongo   = Assertion{"data", "F stored every greeting in MongoDB"}
	fanoutLedger  = Assertion{"data", "F wrote one ledger row per request"}
	fanoutS3      = Assertion{"data", "H archived every greeting to S3"}
	fanoutQueue   = Assertion{"data", "the queue drained"}
	fanoutTraces  = Assertion{"traces", "every request crosses the whole mesh"}
	fanoutConsume = Assertion{"metrics", "F consumed one message per request"}
	smokeTraces   = Assertion{"traces", "the request crosses the whole mesh"}
	smokeNoError  = Assertion{"logs", "no service logs an error"}
	smokeTraceID  = Assertion{"logs", "every service-a line names its trace"}
	killErrors    = Assertion{"load", "errors > 0"}
	killStatus503 = Assertion{"load", "status(503) > 0"}
	killBodyE     = Assertion{"load", `body(503) contains '"service":"service-e"'`}
	killNamesE    = Assertion{"logs", "the gateway answered 503 naming service-e"}
	killBlame     = Assertion{"logs", "no failure is blamed on another service"}
	slowB         = Assertion{"traces", "the added time sits on the link to service-c / service-b p(50) < 150ms"}
)

var catalogue = []Defect{
	{FDoubleStore, "service-f", "F stores each greeting twice in MongoDB (the copy under a random _id)",
		"fanout-load", []Assertion{fanoutMongo}},
	{FAckBeforeStore, "service-f", "F acks before storing and drops 1 in 50 greetings unstored",
		"fanout-load", []Assertion{fanoutMongo, fanoutLedger}},
	{DNoTraceHeaders, "service-d", "D publishes without trace headers, so the ~> service-f edge vanishes from the trace",
		"smoke", []Assertion{smokeTraces}},
	{ESkipsH, "service-e", "E stops calling H (the answer silently lacks H's greeting)",
		"smoke", []Assertion{smokeTraces}},
	{CErrorLog, "service-c", "C logs one error line per request",
		"smoke", []Assertion{smokeNoError}},
	{ALogNoTraceID, "service-a", "A logs without trace_id, so its lines cannot be joined with traces",
		"smoke", []Assertion{smokeTraceID}},
	{BSlow, "service-b", "B adds 300 ms to every request",
		"slow-link", []Assertion{slowB}},
	{FStallsAfter100, "service-f", "F stops consuming after 100 messages (the queue grows)",
		"fanout-load", []Assertion{fanoutTraces, fanoutConsume, fanoutMongo, fanoutQueue, fanoutLedger}},
	{FConsumedTwice, "service-f", "F's greeting_messages_consumed_total counts every greeting twice",
		"fanout-load", []Assertion{fanoutConsume}},
	{Gateway200OnFailure, "gateway", "the gateway answers 200 with an empty list when a peer fails",
		// The silent gateway logs no line at all, and a log rule over no
		// lines is no evidence: "no failure is blamed" fails too.
		// With no 503 there is no body to read: the body rule fails as well.
		"downstream-kill", []Assertion{killErrors, killStatus503, killBodyE, killNamesE, killBlame}},
	{HWrongS3Prefix, "service-h", "H archives to S3 under the wrong prefix (service-x/ instead of service-h/)",
		"fanout-load", []Assertion{fanoutS3}},
	{FLedgerWithoutMongo, "service-f", "F writes the ledger row but not the MongoDB document",
		"fanout-load", []Assertion{fanoutMongo}},
	{GatewayBlamesService, "gateway", "the gateway names its upstream (service-a) as the failing service, whatever failed",
		"downstream-kill", []Assertion{killBodyE, killNamesE, killBlame}},
}

// Catalogue returns every defect (a copy: callers cannot edit the source).
func Catalogue() []Defect {
	out := make([]Defect, len(catalogue))
	for i, d := range catalogue {
		d.MustFail = append([]Assertion(nil), d.MustFail...)
		out[i] = d
	}
	return out
}

// Lookup finds a defect by name.
func Lookup(name string) (Defect, bool) {
	for _, d := range catalogue {
		if d.Name == name {
			return d, true
		}
	}
	return Defect{}, false
}
