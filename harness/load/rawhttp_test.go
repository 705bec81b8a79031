package load

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var rawTraceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

// connCounter counts the connections an httptest server accepts.
type connCounter struct{ opened, closed atomic.Int64 }

func (c *connCounter) hook(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.opened.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.closed.Add(1)
	}
}

func newCountingServer(t *testing.T, h http.HandlerFunc, configure ...func(*http.Server)) (*httptest.Server, *connCounter) {
	t.Helper()
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = cc.hook
	for _, f := range configure {
		f(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
}

func TestRawIsUsedForPlainHTTPOnly(t *testing.T) {
	for target, want := range map[string]bool{
		"http://127.0.0.1:8080/x?y=1":    true,
		"http://localhost/":              true,
		"https://127.0.0.1:8443/":        false,
		"http://user:pw@127.0.0.1:8080/": false,
	} {
		cfg, _, err := Config{Target: target, Users: 1, Requests: 1}.normalized()
		require.NoError(t, err)
		tr, err := newHTTPTransport(cfg, 1)
		require.NoError(t, err)
		assert.Equal(t, want, tr.raw != nil, target)
		_, isRaw := tr.newClient().(*rawClient)
		assert.Equal(t, want, isRaw, target)
		tr.close()
	}
	for name, h := range map[string]map[string]string{
		"connection header": {"Connection": "close"},
		"transfer-encoding": {"Transfer-Encoding": "chunked"},
		"expect":            {"Expect": "100-continue"},
		"bad value":         {"X-A": "a\r\nX-Injected: 1"},
		"bad name":          {"X A": "1"},
	} {
		cfg, _, err := Config{Target: "http://127.0.0.1:1/", Users: 1, Requests: 1, Headers: h}.normalized()
		require.NoError(t, err)
		tr, err := newHTTPTransport(cfg, 1)
		require.NoError(t, err)
		assert.Nil(t, tr.raw, "%s stays on net/http", name)
		tr.close()
	}
}

func TestRawKeepAliveOneConnectionPerWorker(t *testing.T) {
	var n atomic.Int64
	srv, cc := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte("hello"))
	})
	res, err := Run(context.Background(), Config{Target: srv.URL + "/api", Users: 5, Requests: 2000})
	require.NoError(t, err)
	assert.EqualValues(t, 2000, n.Load())
	assert.EqualValues(t, 2000, res.OK)
	assert.Equal(t, map[string]int64{"200": 2000}, res.Status)
	assert.EqualValues(t, 5, cc.opened.Load(), "one kept-alive connection per user")
	require.Eventually(t, func() bool { return cc.closed.Load() == 5 }, 2*time.Second, 10*time.Millisecond,
		"the run closes its connections")

	// Open model: one connection per in-flight slot (how many slots a busy
	// machine needs varies), not one per request.
	cc.opened.Store(0)
	res, err = Run(context.Background(), Config{Target: srv.URL, Model: Open, Rate: 200, Requests: 200})
	require.NoError(t, err)
	assert.EqualValues(t, 200, res.OK)
	assert.Less(t, cc.opened.Load(), res.Requests/2, "connections are reused in the open model")
}

func TestRawChunkedResponses(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 3000)
	srv, cc := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for range 20 { // 60 kB in flushed pieces, larger than the read buffer
			_, _ = w.Write(chunk)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "done")
	})
	res, err := Run(context.Background(), Config{Target: srv.URL, Users: 3, Requests: 300})
	require.NoError(t, err)
	assert.EqualValues(t, 300, res.OK, "%v", res.ErrorReasons)
	assert.EqualValues(t, 3, cc.opened.Load(), "a chunked body is read to its end and the connection reused")
}

func TestRawServerConnectionClose(t *testing.T) {
	var n atomic.Int64
	srv, cc := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.Header().Set("Connection", "close")
		}
		_, _ = w.Write([]byte("ok"))
	})
	res, err := Run(context.Background(), Config{Target: srv.URL, Users: 2, Requests: 200})
	require.NoError(t, err)
	assert.EqualValues(t, 200, res.OK, "%v", res.ErrorReasons)
	assert.Zero(t, res.Errors)
	// Every other answer closes its connection, so about half the requests
	// open a new one.
	assert.InDelta(t, 100, cc.opened.Load(), 10)
}

func TestRawServerClosesIdleConnection(t *testing.T) {
	// A server that drops kept-alive connections while they are idle: the
	// next request finds the connection closed before anything was answered
	// and is retried on a fresh one, as net/http does.
	srv, cc := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}, func(s *http.Server) { s.IdleTimeout = 20 * time.Millisecond })
	res, err := Run(context.Background(), Config{Target: srv.URL, Users: 2, Requests: 20, ThinkTime: 50 * time.Millisecond})
	require.NoError(t, err)
	assert.EqualValues(t, 20, res.OK, "%v", res.ErrorReasons)
	assert.Greater(t, cc.opened.Load(), int64(2))
}

func TestRawStallPastTimeoutIsATimeout(t *testing.T) {
	var n atomic.Int64
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv, _ := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		// The first request (on a new connection) and the third (on a
		// kept-alive one) stall well past the client's timeout.
		if i := n.Add(1); i == 1 || i == 3 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	start := time.Now()
	res, err := Run(context.Background(), Config{Target: srv.URL, Users: 1, Requests: 10, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.EqualValues(t, 10, res.Requests)
	assert.EqualValues(t, 8, res.OK, "the worker recovers on a new connection")
	assert.Equal(t, map[string]int64{"200": 8, "error": 2}, res.Status)
	assert.Equal(t, map[string]int64{"timeout": 2}, res.ErrorReasons)
	assert.GreaterOrEqual(t, res.Latency.MaxMs, 190.0)
}

func TestRawErrorStatuses(t *testing.T) {
	var n atomic.Int64
	srv, cc := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 1:
			http.NotFound(w, r)
		case 2:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 3:
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusFound)
		}
	})
	res, err := Run(context.Background(), Config{Target: srv.URL, Users: 1, Requests: 400})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"404": 100, "500": 100, "204": 100, "302": 100}, res.Status)
	assert.EqualValues(t, 200, res.OK)
	assert.EqualValues(t, 200, res.Errors)
	assert.Equal(t, map[string]int64{"HTTP 404 Not Found": 100, "HTTP 500 Internal Server Error": 100}, res.ErrorReasons)
	assert.EqualValues(t, 1, cc.opened.Load(), "error answers keep the connection")
}

func TestRawRequestAsConfigured(t *testing.T) {
	type seen struct {
		method, uri, host, ua, tp, body, xa, xb string
		cl                                      int64
		te                                      []string
	}
	var mu sync.Mutex
	var got []seen
	srv, _ := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.RequestURI, r.Host, r.UserAgent(), r.Header.Get("Traceparent"), string(b),
			r.Header.Get("X-A"), r.Header.Get("X-B"), r.ContentLength, r.TransferEncoding})
		mu.Unlock()
	})
	host := strings.TrimPrefix(srv.URL, "http://")
	_, err := Run(context.Background(), Config{
		Target: srv.URL + "/api/items?q=1&r=%20x", Users: 2, Requests: 100,
		Body: []byte(`{"a":1}`), Headers: map[string]string{"x-a": "one", "X-B": "two", "Host": "ignored", "Content-Length": "99"},
	})
	require.NoError(t, err)
	mu.Lock()
	require.Len(t, got, 100)
	trace, parent := map[string]bool{}, map[string]bool{}
	for _, s := range got {
		assert.Equal(t, "POST", s.method)
		assert.Equal(t, "/api/items?q=1&r=%20x", s.uri)
		assert.Equal(t, host, s.host)
		assert.Equal(t, "Go-http-client/1.1", s.ua)
		assert.Equal(t, `{"a":1}`, s.body)
		assert.EqualValues(t, 7, s.cl)
		assert.Empty(t, s.te)
		assert.Equal(t, "one", s.xa)
		assert.Equal(t, "two", s.xb)
		m := rawTraceparentRE.FindStringSubmatch(s.tp)
		require.NotNil(t, m, "traceparent %q", s.tp)
		trace[m[1]], parent[m[2]] = true, true
	}
	assert.Len(t, trace, 100, "a fresh trace id per request")
	assert.Len(t, parent, 100, "a fresh parent span id per request")

	// GET sends no Content-Length; PUT without a body sends 0; a custom
	// User-Agent replaces the default.
	got = got[:0]
	mu.Unlock()
	_, err = Run(context.Background(), Config{Target: srv.URL, Users: 1, Requests: 1})
	require.NoError(t, err)
	_, err = Run(context.Background(), Config{Target: srv.URL, Method: "put", Users: 1, Requests: 1, Headers: map[string]string{"User-Agent": "meshproof"}})
	require.NoError(t, err)
	mu.Lock()
	require.Len(t, got, 2)
	assert.Equal(t, "GET", got[0].method)
	assert.EqualValues(t, 0, got[0].cl)
	assert.Equal(t, "PUT", got[1].method)
	assert.Equal(t, "meshproof", got[1].ua)
	mu.Unlock()
}

// captureServer answers 200 to every request on raw TCP and keeps the
// request bytes it read.
func captureServer(t *testing.T) (addr string, reqs <-chan []byte) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	ch := make(chan []byte, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				var buf bytes.Buffer
				br := bufio.NewReader(io.TeeReader(c, &buf))
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					n := buf.Len() - br.Buffered()
					ch <- bytes.Clone(buf.Bytes()[:n])
					buf.Next(n)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				}
			}()
		}
	}()
	return l.Addr().String(), ch
}

// TestRawWireMatchesNetHTTP sends the same configured request through the
// raw client and through net/http and compares the bytes on the wire.
func TestRawWireMatchesNetHTTP(t *testing.T) {
	addr, reqs := captureServer(t)
	tp := "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
	for _, cfg := range []Config{
		{Target: "http://" + addr + "/p?q=1"},
		{Target: "http://" + addr, Method: "delete"},
		{Target: "http://" + addr + "/post", Body: []byte("body!"), Headers: map[string]string{
			"Content-Type": "application/json", "x-multi": "a, b", "Authorization": "Bearer x", "User-Agent": "",
		}},
		// A value that looks like the traceparent line does not fool the
		// patching.
		{Target: "http://" + addr, Headers: map[string]string{"A": "Traceparent: " + strings.Repeat("0", tpLen)}},
	} {
		cfg.Users, cfg.Requests = 1, 1
		cfg, _, err := cfg.normalized()
		require.NoError(t, err)
		tr, err := newHTTPTransport(cfg, 1)
		require.NoError(t, err)
		require.NotNil(t, tr.raw)
		rc := tr.newClient()
		raw := tr.raw
		tr.raw = nil
		hc := tr.newClient()
		tr.raw = raw

		require.True(t, rc.do(context.Background(), tp).ok)
		wireRaw := <-reqs
		require.True(t, hc.do(context.Background(), tp).ok)
		wireStd := <-reqs
		assert.Equal(t, string(wireStd), string(wireRaw), cfg.Target)
		assert.Contains(t, string(wireRaw), "\r\nTraceparent: "+tp+"\r\n")
		tr.close()
	}
}

// scripted serves each accepted connection with fn.
func scripted(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				fn(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + l.Addr().String() + "/"
}

func rawClientFor(t *testing.T, cfg Config) (client, *httpTransport) {
	t.Helper()
	cfg.Users, cfg.Requests = 1, 1
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	cfg, _, err := cfg.normalized()
	require.NoError(t, err)
	tr, err := newHTTPTransport(cfg, 1)
	require.NoError(t, err)
	require.NotNil(t, tr.raw)
	t.Cleanup(tr.close)
	return tr.newClient(), tr
}

const testTP = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"

func TestRawResponseFraming(t *testing.T) {
	for name, tc := range map[string]struct {
		answer     string // to each request; the connection then stays open
		closeAfter bool
		status     string
		reason     string
		body       string // the body's start the client keeps
	}{
		"content-length":          {answer: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", status: "200", body: "abc"},
		"chunked with trailers":   {answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n", status: "200", body: "abc0123456789"},
		"chunked, upper case":     {answer: "HTTP/1.1 201 Created\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n", status: "201"},
		"1xx first":               {answer: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", status: "200"},
		"no reason phrase":        {answer: "HTTP/1.1 418\r\nContent-Length: 0\r\n\r\n", status: "418", reason: "HTTP 418"},
		"bare LF":                 {answer: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", status: "200", body: "ok"},
		"HTTP/1.0 keep-alive":     {answer: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", status: "200", body: "ok"},
		"body to EOF":             {answer: "HTTP/1.1 200 OK\r\n\r\nuntil the end", closeAfter: true, status: "200", body: "until the end"},
		"HTTP/1.0 closes":         {answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", closeAfter: true, status: "200", body: "ok"},
		"truncated body":          {answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", closeAfter: true, status: "error", reason: "read body: connection closed (EOF)"},
		"truncated chunk":         {answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", closeAfter: true, status: "error", reason: "read body: connection closed (EOF)"},
		"malformed status":        {answer: "HTTP/1.1 2000 OK\r\n\r\n", closeAfter: true, status: "error", reason: `malformed HTTP status code "2000"`},
		"not HTTP":                {answer: "SSH-2.0-OpenSSH\r\n", closeAfter: true, status: "error", reason: `malformed HTTP response "SSH-2.0-OpenSSH"`},
		"unsupported encoding":    {answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", closeAfter: true, status: "error", reason: `unsupported transfer encoding: "gzip"`},
		"closed before an answer": {answer: "", closeAfter: true, status: "error", reason: "connection closed (EOF)"},
	} {
		t.Run(name, func(t *testing.T) {
			var conns atomic.Int64
			target := scripted(t, func(c net.Conn, br *bufio.Reader) {
				conns.Add(1)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					_, _ = io.WriteString(c, tc.answer)
					if tc.closeAfter {
						return
					}
				}
			})
			c, _ := rawClientFor(t, Config{Target: target})
			for range 3 {
				o := c.do(context.Background(), testTP)
				assert.Equal(t, tc.status, o.status)
				assert.Equal(t, tc.reason, o.reason)
				assert.Equal(t, tc.status != "error" && !strings.HasPrefix(tc.reason, "HTTP"), o.ok)
				assert.Equal(t, tc.status != "error", o.hasBody, "an answer has a body, maybe empty")
				assert.Equal(t, tc.body, string(o.body))
			}
			want := int64(1)
			if tc.closeAfter {
				want = 3
			}
			assert.Equal(t, want, conns.Load(), "connections")
		})
	}
}

func TestRawHeadHasNoBody(t *testing.T) {
	target := scripted(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
		}
	})
	c, _ := rawClientFor(t, Config{Target: target, Method: "HEAD", Timeout: 500 * time.Millisecond})
	for range 3 {
		o := c.do(context.Background(), testTP)
		assert.True(t, o.ok, o.reason)
	}
}

func TestRawConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	res, err := Run(context.Background(), Config{Target: "http://" + addr, Users: 2, Requests: 10})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"error": 10}, res.Status)
	assert.Equal(t, map[string]int64{"connection refused": 10}, res.ErrorReasons)
	assert.Equal(t, map[string][]string{"error": {"connection refused", "connection refused", "connection refused"}}, res.Bodies,
		"no answer: the reason stands for the body")
}

func TestRawCancelEndsPromptly(t *testing.T) {
	srv, cc := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers while the client waits
	})
	for _, model := range []Model{Closed, Open} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		res, err := Run(ctx, Config{Target: srv.URL, Model: model, Users: 5, Rate: 50, Duration: time.Minute, Timeout: time.Minute})
		cancel()
		require.NoError(t, err)
		assert.Less(t, time.Since(start), time.Second, model)
		assert.Zero(t, res.Requests, "requests cut short by the abort are not counted: %s %v %v", model, res.Status, res.ErrorReasons)
	}
	require.Eventually(t, func() bool { return cc.closed.Load() == cc.opened.Load() }, 2*time.Second, 10*time.Millisecond,
		"every connection is closed: %d opened, %d closed", cc.opened.Load(), cc.closed.Load())
}

func TestRawTransportCloseClosesConnections(t *testing.T) {
	srv, cc := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	c, tr := rawClientFor(t, Config{Target: srv.URL})
	require.True(t, c.do(context.Background(), testTP).ok)
	tr.close()
	require.Eventually(t, func() bool { return cc.closed.Load() == 1 }, 2*time.Second, 10*time.Millisecond)
	o := c.do(context.Background(), testTP)
	assert.False(t, o.ok, "a client of a closed transport fails")
}

func TestRawEligibleHostForms(t *testing.T) {
	for _, target := range []string{"http://[::1]:8080/", "http://example.com/"} {
		u, err := url.Parse(target)
		require.NoError(t, err)
		assert.Empty(t, rawEligible(u, "GET", nil), target)
	}
	u, _ := url.Parse("http://example.com/")
	tr := newRawTransport(u, "GET", nil, nil, time.Second)
	assert.Equal(t, "example.com:80", tr.addr)
	assert.Contains(t, string(tr.req), "GET / HTTP/1.1\r\nHost: example.com\r\n")
	assert.Equal(t, "Traceparent: ", string(tr.req[tr.tpOff-len("Traceparent: "):tr.tpOff]))
}
