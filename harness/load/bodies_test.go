package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusServers answers every 4th request 503 with a JSON error naming a
// service, the others 200 "ok", over plain HTTP (the raw client) and over
// TLS (net/http).
func statusServers(t *testing.T) map[string]string {
	t.Helper()
	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%4 == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"service-e: gone","code":"Unavailable","service":"service-e"}`+"\n")
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	plain, tls := httptest.NewServer(h), httptest.NewTLSServer(h)
	t.Cleanup(plain.Close)
	t.Cleanup(tls.Close)
	return map[string]string{"raw": plain.URL, "net/http": tls.URL}
}

func TestBodiesSampledPerStatus(t *testing.T) {
	const failed = `{"error":"service-e: gone","code":"Unavailable","service":"service-e"}` + "\n"
	for path, target := range statusServers(t) {
		t.Run(path, func(t *testing.T) {
			res, err := Run(context.Background(), Config{Target: target, Users: 4, Requests: 400})
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"200": 300, "503": 100}, res.Status)
			assert.Equal(t, map[string][]string{
				"200": {"ok", "ok", "ok"},
				"503": {failed, failed, failed},
			}, res.Bodies, "at most MaxBodySamples per status, whole when short")
		})
	}
}

// TestBodiesAreTheFirstAnswers: one user sends in order, so the kept
// bodies are those of the first three requests, whatever shard kept them.
func TestBodiesAreTheFirstAnswers(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, strconv.FormatInt(n.Add(1), 10))
	}))
	t.Cleanup(srv.Close)
	res, err := Run(context.Background(), Config{Target: srv.URL, Users: 1, Requests: 50})
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{"200": {"1", "2", "3"}}, res.Bodies)
}

// longBody is MaxBodyBytes+1000 bytes whose character "é" (2 bytes)
// straddles the cut at MaxBodyBytes.
var longBody = strings.Repeat("a", MaxBodyBytes-1) + "é" + strings.Repeat("z", 999)

func TestBodiesAreCutWithoutSplittingACharacter(t *testing.T) {
	want := strings.Repeat("a", MaxBodyBytes-1)
	framings := map[string]func(w io.Writer){
		"content-length": func(w io.Writer) {
			_, _ = fmt.Fprintf(w, "HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s", len(longBody), longBody)
		},
		"chunked": func(w io.Writer) {
			// Chunks of 100 bytes: the kept start spans several.
			_, _ = io.WriteString(w, "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n")
			for s := longBody; s != ""; s = s[min(100, len(s)):] {
				_, _ = fmt.Fprintf(w, "%x\r\n%s\r\n", min(100, len(s)), s[:min(100, len(s))])
			}
			_, _ = io.WriteString(w, "0\r\n\r\n")
		},
	}
	for name, write := range framings {
		t.Run(name, func(t *testing.T) {
			target := scripted(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					write(c)
				}
			})
			res, err := Run(context.Background(), Config{Target: target, Users: 2, Requests: 20})
			require.NoError(t, err)
			require.EqualValues(t, 20, res.Errors, "%v", res.ErrorReasons)
			assert.Equal(t, map[string]int64{"HTTP 500 Oops": 20}, res.ErrorReasons, "the whole body was read past")
			assert.Equal(t, []string{want, want, want}, res.Bodies["500"])
		})
	}
	t.Run("net/http", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, longBody)
		}))
		t.Cleanup(srv.Close)
		res, err := Run(context.Background(), Config{Target: srv.URL, Users: 2, Requests: 20})
		require.NoError(t, err)
		assert.Equal(t, []string{want, want, want}, res.Bodies["500"])
	})
}

func TestRawBodyToEOFIsCut(t *testing.T) {
	target := scripted(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n"+longBody)
		}
	})
	c, _ := rawClientFor(t, Config{Target: target})
	o := c.do(context.Background(), testTP)
	require.True(t, o.ok, o.reason)
	assert.Len(t, o.body, MaxBodyBytes)
	text, ok := o.bodySample()
	assert.True(t, ok)
	assert.Equal(t, strings.Repeat("a", MaxBodyBytes-1), text)
}

func TestBodySample(t *testing.T) {
	for name, tc := range map[string]struct {
		o    outcome
		want string
		kept bool
	}{
		"http body":            {outcome{status: "200", body: []byte("ok"), hasBody: true}, "ok", true},
		"empty body":           {outcome{status: "204", body: []byte{}, hasBody: true}, "", true},
		"grpc message":         {outcome{status: "Unavailable", text: "gone", hasBody: true}, "gone", true},
		"long grpc message":    {outcome{status: "Internal", text: longBody, hasBody: true}, strings.Repeat("a", MaxBodyBytes-1), true},
		"grpc success":         {outcome{status: "OK", ok: true}, "", false},
		"no answer":            {outcome{status: statusError, reason: "timeout"}, "timeout", true},
		"valid at the cut":     {outcome{status: "200", body: []byte(strings.Repeat("é", MaxBodyBytes/2)), hasBody: true}, strings.Repeat("é", MaxBodyBytes/2), true},
		"3-byte rune cut at 2": {outcome{status: "Internal", text: strings.Repeat("a", MaxBodyBytes-2) + "€", hasBody: true}, strings.Repeat("a", MaxBodyBytes-2), true},
	} {
		got, kept := tc.o.bodySample()
		assert.Equal(t, tc.kept, kept, name)
		assert.Equal(t, tc.want, got, name)
	}
}
