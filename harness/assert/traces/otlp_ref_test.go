package traces

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/buger/jsonparser"
)

// decodeSpansRef is the jsonparser decoder that DecodeSpans replaced, kept
// as a reference: the new one must read every fixture exactly as it did.
// It found each value by key path, rescanning every nested level.
func decodeSpansRef(data []byte, withAttrs bool) ([]Span, error) {
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
					sp, err := decodeSpanRef(raw, service, withAttrs)
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

func decodeSpanRef(raw []byte, service string, withAttrs bool) (Span, error) {
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
			sp.Kind, err = parseKindRef(v, typ)
		case "startTimeUnixNano":
			sp.Start, err = parseNanosRef(v, typ)
		case "endTimeUnixNano":
			sp.End, err = parseNanosRef(v, typ)
		case "attributes":
			if withAttrs {
				sp.Attrs = decodeAttrsRef(v)
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
func decodeAttrsRef(arr []byte) map[string]string {
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

func parseKindRef(v []byte, typ jsonparser.ValueType) (int, error) {
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
func parseNanosRef(v []byte, typ jsonparser.ValueType) (uint64, error) {
	if typ == jsonparser.Null || len(v) == 0 {
		return 0, nil
	}
	return strconv.ParseUint(string(v), 10, 64)
}
