package traces

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var fixtureNames = []string{"greeting-trace.json", "greeting-c-under-b.json", "greeting-no-consumer.json"}

func compact(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, b))
	return buf.Bytes()
}

// bareResourceSpans turns {"result": {"resourceSpans": [...]}} into
// {"resourceSpans": [...]}.
func bareResourceSpans(t testing.TB, b []byte) []byte {
	t.Helper()
	var v struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(b, &v))
	return v.Result
}

// The single-pass decoder gives exactly what the jsonparser one gave on
// every fixture, pretty or compact, in chunks or bare, with or without
// attributes.
func TestDecodeSpansMatchesReference(t *testing.T) {
	for _, name := range fixtureNames {
		raw := fixture(t, name)
		c := compact(t, raw)
		inputs := map[string][]byte{
			"pretty":  raw,
			"compact": c,
			"chunks":  bytes.Join([][]byte{c, raw, c}, []byte("\n")),
			"bare":    bareResourceSpans(t, raw),
			"glued":   append(append([]byte{}, c...), c...),
		}
		for kind, in := range inputs {
			for _, withAttrs := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/attrs=%v", name, kind, withAttrs), func(t *testing.T) {
					want, err := decodeSpansRef(in, withAttrs)
					require.NoError(t, err)
					got, err := DecodeSpans(in, withAttrs)
					require.NoError(t, err)
					require.NotEmpty(t, got)
					assert.Equal(t, want, got)
					assert.Equal(t, decodeSpansStd(t, in, withAttrs), got)
				})
			}
		}
	}
}

// decodeSpansStd is an independent reading of the same format with
// encoding/json, for inputs that are valid JSON with canonical keys.
func decodeSpansStd(t testing.TB, data []byte, withAttrs bool) []Span {
	t.Helper()
	type kv struct {
		Key   *string                    `json:"key"`
		Value map[string]json.RawMessage `json:"value"`
	}
	type span struct {
		TraceID    string          `json:"traceId"`
		SpanID     string          `json:"spanId"`
		Parent     *string         `json:"parentSpanId"`
		Name       string          `json:"name"`
		Kind       json.RawMessage `json:"kind"`
		Start      json.RawMessage `json:"startTimeUnixNano"`
		End        json.RawMessage `json:"endTimeUnixNano"`
		Attributes *[]kv           `json:"attributes"`
	}
	type rs struct {
		Resource struct {
			Attributes []kv `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []span `json:"spans"`
		} `json:"scopeSpans"`
	}
	text := func(v json.RawMessage) string {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
		return string(v)
	}
	var out []Span
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var chunk struct {
			Result *struct {
				ResourceSpans []rs `json:"resourceSpans"`
			} `json:"result"`
			ResourceSpans []rs `json:"resourceSpans"`
		}
		require.NoError(t, dec.Decode(&chunk))
		rss := chunk.ResourceSpans
		if chunk.Result != nil {
			rss = chunk.Result.ResourceSpans
		}
		for _, r := range rss {
			service := ""
			for _, a := range r.Resource.Attributes {
				if a.Key != nil && *a.Key == "service.name" {
					service = text(a.Value["stringValue"])
				}
			}
			for _, ss := range r.ScopeSpans {
				for _, s := range ss.Spans {
					sp := Span{TraceID: s.TraceID, SpanID: s.SpanID, Service: service, Name: s.Name}
					if s.Parent != nil {
						sp.ParentID = *s.Parent
					}
					if k := text(s.Kind); k != "" && k != "null" {
						var err error
						if sp.Kind, err = strconv.Atoi(k); err != nil {
							sp.Kind = kindNames[k]
						}
					}
					sp.Start, _ = strconv.ParseUint(text(s.Start), 10, 64)
					sp.End, _ = strconv.ParseUint(text(s.End), 10, 64)
					if withAttrs && s.Attributes != nil {
						sp.Attrs = map[string]string{}
						for _, a := range *s.Attributes {
							if a.Key == nil {
								continue
							}
							for _, typ := range []string{"stringValue", "intValue", "boolValue", "doubleValue"} {
								if v, ok := a.Value[typ]; ok {
									sp.Attrs[*a.Key] = text(v)
								}
							}
						}
					}
					out = append(out, sp)
				}
			}
		}
	}
	return out
}

// tricky has escapes everywhere, keys out of order, unknown fields holding
// every kind of value, empty arrays, odd whitespace and two chunks, the
// second a bare resourceSpans.
const tricky = ` 
 {"unknown": {"a": [1, -2.5e+3, 0.0, true, false, null, {"b": "}]\"\\"}, []], "c": {}},
  "result": {
    "extra": [{"resourceSpans": "not this one"}],
    "resourceSpans": [
      {"scopeSpans": [
         {"spans": []},
         {"scope": {"name": "x", "attributes": [{"key": "k", "value": {"arrayValue": {"values": [{"intValue": "1"}]}}}]},
          "spans": [
            {"attributes": [
               {"value": {"stringValue": "a \"quoted\" \\path\\ \/ \u00e9\ud83d\ude00\t"}, "key": "esc\"aped\u0021"},
               {"key": "n", "value": {"intValue": "-42"}},
               {"key": "b", "value": {"boolValue": true}},
               {"key": "d", "value": {"doubleValue": 1.5e-3}},
               {"key": "kv", "value": {"kvlistValue": {"values": []}}},
               {"value": {"stringValue": "no key"}}
             ],
             "endTimeUnixNano": 20,
             "name" : "GET /a\"b\"\\c \u4e16\u754c",
             "kind": "SPAN_KIND_CLIENT",
             "parentSpanId": "p1",
             "spanId": "s1",
             "startTimeUnixNano": "10",
             "traceId": "t1",
             "status": {"code": "STATUS_CODE_ERROR", "message": "x\u0000y"},
             "events": [], "links": [{"traceId": "zz", "spanId": "yy"}]
            }
          ]}
       ],
       "resource": {"droppedAttributesCount": 0, "attributes": [
          {"key": "service.name", "value": {"stringValue": "svc-\u0041"}},
          {"key": "host.name", "value": {"stringValue": "h"}}
       ]}
      },
      {"resource": {"attributes": []}, "scopeSpans": []},
      {"resource": {}, "scopeSpans": [{"spans": [{"traceId": "t1", "spanId": "s2", "parentSpanId": null, "kind": null,
         "name": "", "startTimeUnixNano": null, "endTimeUnixNano": ""}]}]}
    ]
  }
 }
	{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"bare"}}]},
	  "scopeSpans":[{"spans":[{"traceId":"t2","spanId":"s3","parentSpanId":"s1","name":"n","kind":5,
	  "startTimeUnixNano":"18446744073709551615","endTimeUnixNano":"0","attributes":[]}]}]}]}
`

func TestDecodeSpansTrickyJSON(t *testing.T) {
	want := []Span{
		{TraceID: "t1", SpanID: "s1", ParentID: "p1", Service: "svc-A", Name: "GET /a\"b\"\\c 世界", Kind: KindClient, Start: 10, End: 20,
			Attrs: map[string]string{"esc\"aped!": "a \"quoted\" \\path\\ / é😀\t", "n": "-42", "b": "true", "d": "1.5e-3"}},
		{TraceID: "t1", SpanID: "s2", Kind: KindUnspecified},
		{TraceID: "t2", SpanID: "s3", ParentID: "s1", Service: "bare", Name: "n", Kind: KindConsumer, Start: 1<<64 - 1, Attrs: map[string]string{}},
	}
	got, err := DecodeSpans([]byte(tricky), true)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, decodeSpansStd(t, []byte(tricky), true), got, "encoding/json reads the same")
	ref, err := decodeSpansRef([]byte(tricky), true)
	require.NoError(t, err)
	assert.Equal(t, ref, got, "the jsonparser decoder reads the same")

	got, err = DecodeSpans([]byte(tricky), false)
	require.NoError(t, err)
	for i := range want {
		want[i].Attrs = nil
	}
	assert.Equal(t, want, got)
}

func TestDecodeSpansUnicodeEscapes(t *testing.T) {
	for esc, want := range map[string]string{
		`\u00e9`:             "é",
		`\u00E9\u00c9`:       "éÉ",
		`\ud83d\ude00`:       "😀",
		`\ud83d`:             "\uFFFD", // a lone surrogate, as encoding/json reads it
		`\ud83dx`:            "\uFFFDx",
		`\ude00\ud83d\ude00`: "\uFFFD😀",
		`\ud83d\u0041`:       "\uFFFDA",
		`\u0000`:             "\x00",
		`\"\\\/\b\f\n\r\t`:   "\"\\/\b\f\n\r\t",
		"ünïcødé":            "ünïcødé",
	} {
		data := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"s","name":"` + esc + `"}]}]}]}`
		spans, err := DecodeSpans([]byte(data), false)
		require.NoError(t, err, esc)
		require.Len(t, spans, 1)
		assert.Equal(t, want, spans[0].Name, esc)
		var std string
		require.NoError(t, json.Unmarshal([]byte(`"`+esc+`"`), &std))
		assert.Equal(t, std, spans[0].Name, "as encoding/json: %s", esc)
	}
}

func TestDecodeSpansEmptyAndErrorAnswers(t *testing.T) {
	for _, in := range []string{"", " \n\t", "{}", `{"result":{}}`, `{"result":{"resourceSpans":[]}}`, `{"result":null}`, "{}\n{}"} {
		spans, err := DecodeSpans([]byte(in), false)
		require.NoError(t, err, in)
		assert.Empty(t, spans, in)
	}

	_, err := DecodeSpans([]byte(`{"error":{"httpCode":404,"message":"trace \"x\" not found"}}`), false)
	assert.EqualError(t, err, `jaeger: 404 trace "x" not found`)
	_, err = DecodeSpans([]byte(`{"result":{"resourceSpans":[]},"error":{"message":"late","httpCode":503}}`), false)
	assert.EqualError(t, err, "jaeger: 503 late", "an error is an error wherever it comes")
	_, err = DecodeSpans([]byte(`{"error":null}`), false)
	assert.EqualError(t, err, "jaeger: 0 ")
	c := compact(t, fixture(t, "greeting-trace.json"))
	_, err = DecodeSpans(append(c, `{"error":{"httpCode":500,"message":"boom"}}`...), false)
	assert.EqualError(t, err, "jaeger: 500 boom", "an error chunk after spans")
}

// A result without resourceSpans falls back to a top-level one; one with
// them wins over it.
func TestDecodeSpansResultOrBare(t *testing.T) {
	span := func(id string) string {
		return `[{"scopeSpans":[{"spans":[{"spanId":"` + id + `"}]}]}]`
	}
	for in, want := range map[string]string{
		`{"resourceSpans":` + span("bare") + `,"result":{}}`:                                  "bare",
		`{"resourceSpans":` + span("bare") + `,"result":{"resourceSpans":` + span("r") + `}}`: "r",
		`{"result":{"resourceSpans":` + span("r") + `},"resourceSpans":` + span("bare") + `}`: "r",
	} {
		spans, err := DecodeSpans([]byte(in), false)
		require.NoError(t, err, in)
		require.Len(t, spans, 1, in)
		assert.Equal(t, want, spans[0].SpanID, in)
		ref, err := decodeSpansRef([]byte(in), false)
		require.NoError(t, err)
		assert.Equal(t, ref, spans, in)
	}
}

func TestDecodeSpansMalformed(t *testing.T) {
	wrap := func(v string) string { return `{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[` + v + `]}]}]}}` }
	for _, in := range []string{
		"null", "[]", `"x"`, "{", "}", `{"a"}`, `{"a" 1}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{a:1}`,
		`{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":tru}`, `{"a":nul}`, `{"a":True}`, `{"a":01}`, `{"a":-}`,
		`{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`, `{"a":+1}`, `{"a":0x1}`, `{"a":"\x"}`, `{"a":"\u12"}`,
		`{"a":"\u12g4"}`, "{\"a\":\"tab\there\"}", `{"a":"open}`, `{"a":"ends in \"}`, `{"a":1}x`, `{"a":1}]`,
		`{"a":{"b":[}]}}`, `{"a":[{]}`, `{"result":{"resourceSpans":{}}}`, `{"resourceSpans":"x"}`,
		`{"result":{"resourceSpans":[}}`,
		wrap(`"not a span"`), wrap(`1`), wrap(`{"kind":"SPAN_KIND_BOGUS"}`), wrap(`{"kind":2.5}`), wrap(`{"kind":true}`),
		wrap(`{"startTimeUnixNano":"-1"}`), wrap(`{"endTimeUnixNano":"12x"}`), wrap(`{"endTimeUnixNano":1e9}`),
		wrap(`{"startTimeUnixNano":"18446744073709551616"}`), wrap(`{"spanId":"s",}`),
		strings.Repeat("[", 20000), `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "}",
		`{"a":` + strings.Repeat(`{"b":`, 20000) + "1" + strings.Repeat("}", 20000) + "}",
		"\xef\xbb\xbf{}", "{\x00}",
	} {
		for _, withAttrs := range []bool{false, true} {
			var spans []Span
			var err error
			require.NotPanics(t, func() { spans, err = DecodeSpans([]byte(in), withAttrs) }, in)
			assert.Error(t, err, "%.80s", in)
			assert.Nil(t, spans, "%.80s", in)
		}
	}

	_, err := DecodeSpans([]byte(wrap(`{"spanId":"s9","kind":"SPAN_KIND_BOGUS"}`)), false)
	assert.EqualError(t, err, `decode span s9: kind: unknown span kind "SPAN_KIND_BOGUS"`)
	_, err = DecodeSpans([]byte(`{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x\q"}]}]}]}}`), false)
	assert.ErrorContains(t, err, `decode trace: offset 63: invalid escape \q`)
}

// Every strict prefix of an answer is an error, never a panic or a
// silently short trace.
func TestDecodeSpansTruncated(t *testing.T) {
	c := compact(t, fixture(t, "greeting-trace.json"))
	for n := 1; n < len(c); n++ {
		spans, err := DecodeSpans(c[:n], n%2 == 0)
		require.Error(t, err, "prefix of %d bytes: %s", n, c[max(0, n-40):n])
		require.Nil(t, spans)
	}
}

// Unknown values are skipped with encoding/json's idea of valid JSON.
func TestDecodeSpansSkipsOnlyValidJSON(t *testing.T) {
	for _, v := range []string{
		`0`, `-0`, `-0.0e-0`, `1E+10`, `123456789012345678901234567890`, `"\u0020\/"`, `[]`, `{}`, `[[],[{}]]`,
		`{"":""}`, "\"\x7f\xff\"", ` [ 1 , 2 ] `, `00`, `1.e1`, `[1,,2]`, `{"a":1,"a"}`, `"\u"`, `nulll`, `[1]]`,
	} {
		in := `{"x":` + v + `,"resourceSpans":[]}`
		_, err := DecodeSpans([]byte(in), false)
		assert.Equal(t, json.Valid([]byte(in)), err == nil, "%s: %v", v, err)
	}
}

func TestStopIn8(t *testing.T) {
	check := func(x uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], x)
		want := false
		for _, c := range b {
			want = want || strStop[c]
		}
		require.Equal(t, want, stopIn8(x), "%q", b)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(r.Uint64())
		check(r.Uint64() | 0x2020202020202020) // mostly without control bytes
	}
	for c := range 256 {
		for pos := range 8 {
			check(0x6161616161616161&^(0xff<<(8*pos)) | uint64(c)<<(8*pos))
		}
	}
}

func FuzzDecodeSpans(f *testing.F) {
	for _, name := range fixtureNames[:2] {
		f.Add(compact(f, fixture(f, name)))
	}
	f.Add([]byte(tricky))
	f.Add([]byte(`{"error":{"httpCode":500,"message":"boom"}}`))
	f.Add([]byte(`{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"a","kind":"SPAN_KIND_SERVER","name":"\u00e9\ud83d"}]}]}]}}` + "\n{}"))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":1e3,"startTimeUnixNano":"99999999999999999999"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, err := DecodeSpans(data, false)
		withAttrs, err2 := DecodeSpans(data, true)
		require.Equal(t, err == nil, err2 == nil, "attributes change nothing but Attrs")
		require.Len(t, withAttrs, len(plain))
		for i := range plain {
			require.Nil(t, plain[i].Attrs)
			withAttrs[i].Attrs = nil
		}
		require.Equal(t, plain, withAttrs)
		if len(data) < 4096 {
			in := append(append([]byte(`{"x":`), data...), `}`...)
			_, err := DecodeSpans(in, false)
			require.Equal(t, json.Valid(in), err == nil, "skipping %q: %v", data, err)
		}
	})
}
