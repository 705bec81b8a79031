package traces

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/buger/jsonparser"
)

// Span kinds as OTLP numbers them. Jaeger's api_v3 writes them as integers;
// the enum names (SPAN_KIND_SERVER) are accepted too, since OTLP JSON allows both.
const (
	KindUnspecified = 0
	KindInternal    = 1
	KindServer      = 2
	KindClient      = 3
	KindProducer    = 4
	KindConsumer    = 5
)

// Span is the part of an OTLP span that judging needs.
type Span struct {
	TraceID  string
	SpanID   string
	ParentID string
	Service  string
	Name     string
	Kind     int
	Start    uint64 // unix nanoseconds
	End      uint64
	Attrs    map[string]string
}

// Duration in seconds.
func (s *Span) Duration() float64 {
	if s.End <= s.Start {
		return 0
	}
	return float64(s.End-s.Start) / 1e9
}

// DecodeSpans reads an api_v3 answer — one or more {"result": {...}}
// objects (grpc-gateway streams a big trace as consecutive chunks) or a bare
// {"resourceSpans": [...]} — into flat spans. It scans with jsonparser
// rather than encoding/json because judging 10,000 saved traces must take
// well under a second (issue 8); withAttrs=false also skips attributes
// when no check needs them.
func DecodeSpans(data []byte, withAttrs bool) ([]Span, error) {
	var spans []Span
	rest := bytes.TrimSpace(data)
	for len(rest) > 0 {
		obj, typ, off, err := jsonparser.Get(rest)
		if err != nil || typ != jsonparser.Object {
			return nil, fmt.Errorf("decode trace: want a JSON object, got %.40q", rest)
		}
		rest = bytes.TrimSpace(rest[off:])
		if e, _, _, err := jsonparser.Get(obj, "error"); err == nil {
			code, _ := jsonparser.GetInt(e, "httpCode")
			msg, _ := jsonparser.GetString(e, "message")
			return nil, fmt.Errorf("jaeger: %d %s", code, msg)
		}
		rss, _, _, err := jsonparser.Get(obj, "result", "resourceSpans")
		if err == jsonparser.KeyPathNotFoundError {
			rss, _, _, err = jsonparser.Get(obj, "resourceSpans")
		}
		if err == jsonparser.KeyPathNotFoundError {
			continue // an empty chunk
		} else if err != nil {
			return nil, fmt.Errorf("decode trace: resourceSpans: %w", err)
		}
		var ferr error
		_, err = jsonparser.ArrayEach(rss, func(rs []byte, _ jsonparser.ValueType, _ int, _ error) {
			if ferr != nil {
				return
			}
			service := ""
			_, _ = jsonparser.ArrayEach(rs, func(kv []byte, _ jsonparser.ValueType, _ int, _ error) {
				if k, _ := jsonparser.GetUnsafeString(kv, "key"); k == "service.name" {
					service, _ = jsonparser.GetString(kv, "value", "stringValue")
				}
			}, "resource", "attributes")
			_, _ = jsonparser.ArrayEach(rs, func(ss []byte, _ jsonparser.ValueType, _ int, _ error) {
				_, _ = jsonparser.ArrayEach(ss, func(raw []byte, _ jsonparser.ValueType, _ int, _ error) {
					if ferr != nil {
						return
					}
					sp, err := decodeSpan(raw, service, withAttrs)
					if err != nil {
						ferr = err
						return
					}
					spans = append(spans, sp)
				}, "spans")
			}, "scopeSpans")
		})
		if ferr != nil {
			return nil, ferr
		}
		if err != nil {
			return nil, fmt.Errorf("decode trace: %w", err)
		}
	}
	return spans, nil
}

func decodeSpan(raw []byte, service string, withAttrs bool) (Span, error) {
	sp := Span{Service: service}
	var err error
	perr := jsonparser.ObjectEach(raw, func(key, v []byte, typ jsonparser.ValueType, _ int) error {
		switch string(key) {
		case "traceId":
			sp.TraceID = string(v)
		case "spanId":
			sp.SpanID = string(v)
		case "parentSpanId":
			if typ == jsonparser.String {
				sp.ParentID = string(v)
			}
		case "name":
			sp.Name, err = jsonparser.ParseString(v)
		case "kind":
			sp.Kind, err = parseKind(v, typ)
		case "startTimeUnixNano":
			sp.Start, err = parseNanos(v, typ)
		case "endTimeUnixNano":
			sp.End, err = parseNanos(v, typ)
		case "attributes":
			if withAttrs {
				sp.Attrs = decodeAttrs(v)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	if perr != nil {
		return sp, fmt.Errorf("decode span %s: %w", sp.SpanID, perr)
	}
	return sp, nil
}

// decodeAttrs reads OTLP key/value pairs as text: ints (written as JSON
// strings in OTLP), bools and doubles become their usual spelling.
func decodeAttrs(arr []byte) map[string]string {
	m := map[string]string{}
	_, _ = jsonparser.ArrayEach(arr, func(kv []byte, _ jsonparser.ValueType, _ int, _ error) {
		k, err := jsonparser.GetString(kv, "key")
		if err != nil {
			return
		}
		_ = jsonparser.ObjectEach(kv, func(typ, v []byte, vt jsonparser.ValueType, _ int) error {
			switch string(typ) {
			case "stringValue":
				m[k], _ = jsonparser.ParseString(v)
			case "intValue", "boolValue", "doubleValue":
				m[k] = string(v)
			}
			return nil
		}, "value")
	})
	return m
}

var kindNames = map[string]int{
	"SPAN_KIND_UNSPECIFIED": KindUnspecified, "SPAN_KIND_INTERNAL": KindInternal,
	"SPAN_KIND_SERVER": KindServer, "SPAN_KIND_CLIENT": KindClient,
	"SPAN_KIND_PRODUCER": KindProducer, "SPAN_KIND_CONSUMER": KindConsumer,
}

func parseKind(v []byte, typ jsonparser.ValueType) (int, error) {
	switch typ {
	case jsonparser.Null:
		return KindUnspecified, nil
	case jsonparser.String:
		k, ok := kindNames[string(v)]
		if !ok {
			return 0, fmt.Errorf("unknown span kind %q", v)
		}
		return k, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, fmt.Errorf("span kind %s: %w", v, err)
	}
	return n, nil
}

// parseNanos reads a fixed64 that OTLP JSON writes as a string (or a number).
func parseNanos(v []byte, typ jsonparser.ValueType) (uint64, error) {
	if typ == jsonparser.Null || len(v) == 0 {
		return 0, nil
	}
	return strconv.ParseUint(string(v), 10, 64)
}
