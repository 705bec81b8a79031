package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// transport makes per-worker clients for one target.
type transport interface {
	newClient() client
	close()
}

// client sends one request at a time; each worker owns one, so its request
// objects are reused without locking.
type client interface {
	do(ctx context.Context, traceparent string) outcome
}

// statusText holds "100".."599" so recording a status allocates nothing.
var statusText = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

type httpTransport struct {
	// raw, when set, serves every client: the lean HTTP/1.1 client of
	// rawhttp.go. net/http (tr) stays for https and for requests the raw
	// client does not handle.
	raw     *rawTransport
	tr      *http.Transport
	timeout time.Duration
	url     *url.URL
	method  string
	headers http.Header
	body    []byte
}

// newHTTPTransport tunes net/http for load: one keep-alive connection per
// concurrent request, no connection churn, no transparent gzip (the body is
// discarded anyway). Plain http:// targets whose request the raw client can
// send use it instead (rawhttp.go); net/http then only serves https and the
// rest.
func newHTTPTransport(cfg Config, concurrency int) (*httpTransport, error) {
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("load target %s: %w", cfg.Target, err)
	}
	dialer := &net.Dialer{Timeout: min(cfg.Timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil, // targets are local; never route load through a proxy
		DialContext:         dialer.DialContext,
		MaxIdleConns:        concurrency + 16,
		MaxIdleConnsPerHost: concurrency + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSHandshakeTimeout: min(cfg.Timeout, 5*time.Second),
		// Test environments use self-signed certificates; load is not where
		// the target's certificate chain is verified.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
	}
	h := http.Header{}
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	t := &httpTransport{
		tr:      tr,
		timeout: cfg.Timeout,
		url:     u,
		method:  cfg.Method,
		headers: h,
		body:    cfg.Body,
	}
	if rawEligible(u, cfg.Method, h) == "" {
		t.raw = newRawTransport(u, cfg.Method, h, cfg.Body, cfg.Timeout)
	}
	return t, nil
}

func (t *httpTransport) close() {
	if t.raw != nil {
		t.raw.close()
	}
	t.tr.CloseIdleConnections()
}

func (t *httpTransport) newClient() client {
	if t.raw != nil {
		return t.raw.newClient()
	}
	c := &httpClient{t: t, tp: make([]string, 1), body: make([]byte, MaxBodyBytes)}
	hdr := t.headers.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr["Traceparent"] = c.tp
	c.req = &http.Request{
		Method:     t.method,
		URL:        t.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Host:       t.url.Host,
	}
	if len(t.body) > 0 {
		c.req.ContentLength = int64(len(t.body))
		body := t.body
		c.req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return c
}

type httpClient struct {
	t   *httpTransport
	req *http.Request
	tp  []string // the Traceparent header's value slot, rewritten per request
	rc  bodyReader
	// body receives the start of every answer's body (MaxBodyBytes),
	// reused by every request: the recorder copies it only while that
	// status's sample has room.
	body []byte
}

// bodyReader is a reusable request body.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

func (c *httpClient) do(ctx context.Context, traceparent string) outcome {
	ctx, cancel := context.WithTimeout(ctx, c.t.timeout)
	defer cancel()
	c.tp[0] = traceparent
	req := c.req.WithContext(ctx)
	if len(c.t.body) > 0 {
		c.rc.Reset(c.t.body)
		req.Body = &c.rc
	}
	// RoundTrip rather than Client.Do: the client's redirect bookkeeping
	// (header and URL copies) costs allocations on every request, and a
	// load test reports a 3xx as the target answered it.
	resp, err := c.t.tr.RoundTrip(req)
	if err != nil {
		return outcome{status: "error", reason: errReason(err)}
	}
	n, err := readPrefix(resp.Body, c.body)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	_ = resp.Body.Close()
	if err != nil {
		return outcome{status: "error", reason: "read body: " + errReason(err)}
	}
	body := c.body[:n]
	code := resp.StatusCode
	st := "other"
	if code >= 0 && code < len(statusText) {
		st = statusText[code]
	}
	if code >= 400 {
		return outcome{status: st, reason: "HTTP " + resp.Status, body: body, hasBody: true}
	}
	return outcome{status: st, ok: true, body: body, hasBody: true}
}

// readPrefix reads r into buf until buf is full or r ends, and returns how
// much it read; the end of r (io.EOF) is not an error. Unlike io.ReadFull
// it passes a truncated body's io.ErrUnexpectedEOF on as the failure it
// is, rather than making one of a short body.
func readPrefix(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// errReason turns a transport error into a short, low-cardinality reason.
func errReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}
