package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The raw HTTP/1.1 client is the hot path for plain http:// targets. Each
// worker owns one persistent TCP connection and one pre-serialised request;
// a request is a single Write of those bytes (with the traceparent value
// patched in place) and a read of the answer through a small bufio.Reader on
// the same goroutine. net/http's per-connection read and write loop
// goroutines, the channel hand-offs between them and the worker, and the
// per-request context are what dominated the engine's CPU profile; here the
// request timeout is a connection deadline and the run's cancellation closes
// the connection.
//
// The wire format follows net/http's Request.Write for the same request:
// request line, Host, User-Agent, Content-Length (when there is a body, and
// always for POST, PUT and PATCH, as net/http does), then the configured headers in sorted
// order, Traceparent among them, then the body. Anything unusual (https,
// credentials in the URL, headers net/http would reject or that change the
// connection's framing) stays on net/http: see rawEligible.

const (
	rawReadBuf = 4 << 10
	// rawMaxHeaderBytes bounds a response's header block, like net/http's
	// default Transport.MaxResponseHeaderBytes.
	rawMaxHeaderBytes = 10 << 20
	// rawMaxReasons bounds the per-client cache of "HTTP <status>" reasons.
	rawMaxReasons = 32
	tpLen         = 55 // len("00-<32 hex>-<16 hex>-01")
)

// capture peeks a body's start in the read buffer, so it must fit there:
// this fails to compile if MaxBodyBytes outgrows rawReadBuf.
var _ [rawReadBuf - MaxBodyBytes]struct{}

// rawTransport makes rawClients for one http:// target.
type rawTransport struct {
	addr        string // host:port to dial
	timeout     time.Duration
	dialTimeout time.Duration
	req         []byte // the serialised request with a placeholder traceparent
	tpOff       int    // where the traceparent value starts in req
	noBody      bool   // HEAD: responses carry no body

	mu      sync.Mutex
	clients []*rawClient
	closed  bool
}

// rawEligible says why the raw client cannot send cfg's request, or "" when
// it can.
func rawEligible(u *url.URL, method string, headers http.Header) string {
	switch {
	case u.Scheme != "http":
		return "scheme " + u.Scheme
	case u.User != nil:
		return "credentials in the URL"
	case u.Host == "" || strings.ContainsAny(u.Host, "% \t\r\n") || !isASCII(u.Host) || !httpguts.ValidHostHeader(u.Host):
		return "unusual host"
	case method == "CONNECT" || !validMethod(method):
		return "method " + method
	case stringHasCTL(u.RequestURI()):
		return "control character in the URL"
	}
	for k, vv := range headers {
		if !httpguts.ValidHeaderFieldName(k) {
			return "invalid header name"
		}
		switch k {
		// These change the connection's framing or life; net/http knows
		// what to do with them.
		case "Connection", "Transfer-Encoding", "Te", "Trailer", "Expect", "Upgrade", "Proxy-Connection", "Keep-Alive":
			return "header " + k
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return "invalid header value"
			}
		}
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func stringHasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// newRawTransport serialises the request once. headers must already pass
// rawEligible.
func newRawTransport(u *url.URL, method string, headers http.Header, body []byte, timeout time.Duration) *rawTransport {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, u.RequestURI(), u.Host)
	ua := "Go-http-client/1.1" // net/http's default, unless the headers say otherwise
	if _, ok := headers["User-Agent"]; ok {
		ua = strings.TrimSpace(headers.Get("User-Agent"))
	}
	if ua != "" {
		fmt.Fprintf(&b, "User-Agent: %s\r\n", ua)
	}
	if len(body) > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	h := headers.Clone()
	if h == nil {
		h = http.Header{}
	}
	placeholder := strings.Repeat("0", tpLen)
	h["Traceparent"] = []string{placeholder}
	headStart := b.Len() - 1 // the '\n' that ends the previous line
	_ = h.WriteSubset(&b, reqWriteExclude)
	// Header values hold no CR or LF (rawEligible), so the line is found
	// by its start.
	tpOff := headStart + bytes.Index(b.Bytes()[headStart:], []byte("\nTraceparent: "+placeholder+"\r\n")) + len("\nTraceparent: ")
	b.WriteString("\r\n")
	b.Write(body)
	return &rawTransport{
		addr:        net.JoinHostPort(u.Hostname(), port),
		timeout:     timeout,
		dialTimeout: min(timeout, 5*time.Second),
		req:         b.Bytes(),
		tpOff:       tpOff,
		noBody:      method == "HEAD",
	}
}

// reqWriteExclude is what net/http's Request.Write leaves out of the header
// map (it writes Host, User-Agent and Content-Length itself).
var reqWriteExclude = map[string]bool{
	"Host": true, "User-Agent": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true,
}

func (t *rawTransport) newClient() *rawClient {
	c := &rawClient{t: t, req: bytes.Clone(t.req), body: make([]byte, 0, MaxBodyBytes)}
	t.mu.Lock()
	c.shut = t.closed
	t.clients = append(t.clients, c)
	t.mu.Unlock()
	return c
}

// close closes every client's connection; a client used afterwards fails.
func (t *rawTransport) close() {
	t.mu.Lock()
	clients := t.clients
	t.closed = true
	t.clients = nil
	t.mu.Unlock()
	for _, c := range clients {
		c.shutdown()
	}
}

// rawClient is one worker's connection. Only its worker calls do; the
// cancellation hook and the transport's close reach the connection under mu.
type rawClient struct {
	t   *rawTransport
	req []byte

	mu   sync.Mutex // guards conn against shutdown and the cancellation hook
	conn net.Conn
	shut bool

	br     *bufio.Reader
	reused bool // conn has carried a complete exchange

	hookDone <-chan struct{} // the Done channel the hook watches
	stopHook func() bool     // under mu

	reasons map[string]string // status line tail -> "HTTP <status>"

	// body holds the start of the last answer's body (capacity
	// MaxBodyBytes), reused by every request: the recorder copies it only
	// while that status's sample has room.
	body []byte
}

func (c *rawClient) shutdown() {
	c.mu.Lock()
	c.shut = true
	if c.conn != nil {
		_ = c.conn.Close()
	}
	stop := c.stopHook
	c.stopHook = nil
	c.mu.Unlock()
	if stop != nil {
		stop() // a long-lived caller context must not keep the hook
	}
}

// watch closes the connection as soon as ctx ends, so a cancelled run does
// not wait out a request timeout. It is registered once per context.
func (c *rawClient) watch(ctx context.Context, done <-chan struct{}) {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		if c.conn != nil {
			_ = c.conn.Close()
		}
		c.mu.Unlock()
	})
	c.mu.Lock()
	old := c.stopHook
	c.stopHook = stop
	c.mu.Unlock()
	if old != nil {
		old()
	}
	c.hookDone = done
}

func (c *rawClient) dropConn() {
	c.mu.Lock()
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
	c.mu.Unlock()
	c.reused = false
}

func (c *rawClient) dial(ctx context.Context, deadline time.Time) error {
	d := net.Dialer{Timeout: c.t.dialTimeout, Deadline: deadline, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.t.addr)
	if err != nil {
		// The dial can see ctx's deadline pass a moment before ctx itself
		// is done; wait for that moment, so that the caller knows the
		// failure is the run's end, not the target's.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			<-ctx.Done()
		}
		return err
	}
	c.mu.Lock()
	if c.shut {
		c.mu.Unlock()
		_ = nc.Close()
		return net.ErrClosed
	}
	c.conn = nc
	c.mu.Unlock()
	// A cancellation that fired before conn was set found nothing to close.
	if err := ctx.Err(); err != nil {
		c.dropConn()
		return err
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, rawReadBuf)
	} else {
		c.br.Reset(nc)
	}
	c.reused = false
	return nil
}

func (c *rawClient) do(ctx context.Context, traceparent string) outcome {
	if done := ctx.Done(); done != nil {
		select {
		case <-done:
			return outcome{status: "error", reason: errReason(ctx.Err())}
		default:
		}
		if done != c.hookDone {
			c.watch(ctx, done)
		}
	}
	req := c.req
	if len(traceparent) == tpLen {
		copy(req[c.t.tpOff:], traceparent)
	} else {
		req = c.withTraceparent(traceparent)
	}
	deadline := time.Now().Add(c.t.timeout)
	for attempt := 0; ; attempt++ {
		if c.conn == nil {
			if err := c.dial(ctx, deadline); err != nil {
				return outcome{status: "error", reason: rawErrReason(err)}
			}
		}
		// The request's timeout, over writing it and reading the answer.
		if err := c.conn.SetDeadline(deadline); err != nil {
			c.dropConn()
			if attempt == 0 {
				continue
			}
			return outcome{status: "error", reason: rawErrReason(err)}
		}
		o, retry := c.roundTrip(req)
		if retry && attempt == 0 && ctx.Err() == nil && time.Now().Before(deadline) {
			continue
		}
		return o
	}
}

// withTraceparent is the slow path for a traceparent that does not fit the
// placeholder (never the case for the engine's own).
func (c *rawClient) withTraceparent(tp string) []byte {
	off := c.t.tpOff
	b := make([]byte, 0, len(c.req)-tpLen+len(tp))
	b = append(b, c.req[:off]...)
	b = append(b, tp...)
	return append(b, c.req[off+tpLen:]...)
}

// roundTrip writes req and reads the answer on the current connection. retry
// reports a failure that a fresh connection may not have: the server closed
// a kept-alive connection before anything of the answer arrived (net/http
// retries those too).
func (c *rawClient) roundTrip(req []byte) (o outcome, retry bool) {
	reused := c.reused
	if _, err := c.conn.Write(req); err != nil {
		c.dropConn()
		return outcome{status: "error", reason: rawErrReason(err)}, reused && staleConnErr(err)
	}
	code, reason, keep, started, err := c.readResponse()
	if err != nil {
		c.dropConn()
		return outcome{status: "error", reason: rawErrReason(err)}, reused && !started && staleConnErr(err)
	}
	if keep && c.br.Buffered() == 0 {
		c.reused = true
	} else {
		// Closing, or bytes nobody asked for (net/http drops such a
		// connection too).
		c.dropConn()
	}
	st := "other"
	if code >= 0 && code < len(statusText) {
		st = statusText[code]
	}
	if code >= 400 {
		return outcome{status: st, reason: reason, body: c.body, hasBody: true}, false
	}
	return outcome{status: st, ok: true, body: c.body, hasBody: true}, false
}

// reason is "HTTP " + the status as net/http reports it ("503 Service
// Unavailable"), cached so that an error response allocates nothing.
func (c *rawClient) reason(status []byte) string {
	if r, ok := c.reasons[string(status)]; ok {
		return r
	}
	r := "HTTP " + string(status)
	if c.reasons == nil {
		c.reasons = map[string]string{}
	}
	if len(c.reasons) < rawMaxReasons {
		c.reasons[string(status)] = r
	}
	return r
}

// staleConnErr is how a write or first read fails on a connection the
// server has closed.
func staleConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// rawErrReason is errReason, with the addresses (ports change with every
// connection) left out of the reasons errReason does not name, and body
// failures prefixed as the net/http path does.
func rawErrReason(err error) string {
	if be, ok := errors.AsType[readBodyError](err); ok {
		return "read body: " + rawErrReason(be.err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		r := errReason(err)
		if r == truncReason(err.Error()) {
			return errReason(oe.Err)
		}
		return r
	}
	return errReason(err)
}

func truncReason(msg string) string {
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

// rawError is a malformed or unsupported answer.
type rawError struct{ msg string }

func (e *rawError) Error() string { return e.msg }

func badResponse(what string, b []byte) error {
	if len(b) > 40 {
		b = b[:40]
	}
	return &rawError{msg: fmt.Sprintf("%s %q", what, b)}
}

// readResponse reads one response, keeping the start of its body in c.body
// and discarding the rest. reason is
// "HTTP <status>" for a status of 400 and up; keep says the connection can carry another request; started says some of
// the response arrived.
func (c *rawClient) readResponse() (code int, reason string, keep, started bool, err error) {
	for {
		code, reason, keep, started, err = c.readOne()
		// 1xx answers other than 101 precede the real one.
		if err != nil || code < 100 || code >= 200 || code == 101 {
			return code, reason, keep, started, err
		}
	}
}

// respHead is what a response's status line and headers say about its body
// and its connection. readOne keeps it on its stack and hands the steps a
// pointer, so reading a response allocates nothing.
type respHead struct {
	code          int
	reason        string // "HTTP <status>" for a code of 400 and up
	http10        bool
	keep          bool  // the connection can carry another request
	chunked       bool  // Transfer-Encoding: chunked
	contentLength int64 // -1 when not given
	headerBytes   int   // read so far, against rawMaxHeaderBytes
}

// readOne reads one response: the status line, the header fields this
// client acts on, then the body, of which only the start is kept.
func (c *rawClient) readOne() (code int, reason string, keep, started bool, err error) {
	var h respHead
	c.body = c.body[:0]
	if started, err := c.readStatusLine(&h); err != nil {
		return 0, "", false, started, err
	}
	if err := c.readHeaders(&h); err != nil {
		return 0, "", false, true, err
	}
	if err := c.discardBody(&h); err != nil {
		return 0, "", false, true, readBodyError{err}
	}
	return h.code, h.reason, h.keep, true, nil
}

// readStatusLine reads "HTTP/1.1 200 OK" into h. started says some of the
// response arrived, which tells a stale kept-alive connection (retried)
// from a failed exchange.
func (c *rawClient) readStatusLine(h *respHead) (started bool, err error) {
	br := c.br
	line, err := br.ReadSlice('\n')
	if err != nil {
		started = len(line) > 0 || br.Buffered() > 0
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			err = badResponse("malformed HTTP response", line)
		case err == io.EOF && len(line) > 0:
			err = io.ErrUnexpectedEOF
		}
		return started, err
	}
	line = trimEOL(line)
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return true, badResponse("malformed HTTP response", line)
	}
	proto := line[:sp]
	status := bytes.TrimLeft(line[sp+1:], " ")
	codeText := status
	if before, _, ok := bytes.Cut(status, []byte{' '}); ok {
		codeText = before
	}
	if len(codeText) != 3 || !isDigit(codeText[0]) || !isDigit(codeText[1]) || !isDigit(codeText[2]) {
		return true, badResponse("malformed HTTP status code", codeText)
	}
	h.code = int(codeText[0]-'0')*100 + int(codeText[1]-'0')*10 + int(codeText[2]-'0')
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		return true, badResponse("malformed HTTP version", proto)
	}
	// The status line lives in br's buffer, which the header lines will
	// overwrite: the reason is taken now.
	if h.code >= 400 {
		h.reason = c.reason(status)
	}
	h.keep = !h.http10 && h.code != 101
	h.contentLength = -1
	h.headerBytes = len(line)
	return true, nil
}

// readHeaders reads the header lines up to the empty one, applying those
// that frame the body or the connection to h, and bounds their total size
// as net/http does.
func (c *rawClient) readHeaders(h *respHead) error {
	br := c.br
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An overlong header line: none of those we read is.
			if err := c.skipLongLine(h, len(line)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return eofToUnexpected(err)
		}
		h.headerBytes += len(line)
		if h.headerBytes > rawMaxHeaderBytes {
			return errHeadersTooLong()
		}
		line = trimEOL(line)
		if len(line) == 0 {
			return nil
		}
		if err := h.field(line); err != nil {
			return err
		}
	}
}

// skipLongLine reads past the rest of a header line longer than br's
// buffer, of which n bytes were read, counting it against the limit.
func (c *rawClient) skipLongLine(h *respHead, n int) error {
	h.headerBytes += n
	err := bufio.ErrBufferFull
	for errors.Is(err, bufio.ErrBufferFull) {
		var line []byte
		line, err = c.br.ReadSlice('\n')
		h.headerBytes += len(line)
		if h.headerBytes > rawMaxHeaderBytes {
			return errHeadersTooLong()
		}
	}
	return eofToUnexpected(err)
}

func errHeadersTooLong() error {
	return &rawError{msg: fmt.Sprintf("net/http: server response headers exceeded %d bytes; aborted", rawMaxHeaderBytes)}
}

// field applies one header line: Content-Length, Transfer-Encoding and
// Connection; the others, and lines without a name, are ignored.
func (h *respHead) field(line []byte) error {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil // a continuation or a malformed line: nothing we use
	}
	name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
	switch len(name) {
	case len("content-length"):
		if !eqFold(name, "content-length") {
			return nil
		}
		n, ok := parseContentLength(value)
		if !ok || (h.contentLength >= 0 && n != h.contentLength) {
			return badResponse("bad Content-Length", value)
		}
		h.contentLength = n
	case len("transfer-encoding"):
		if !eqFold(name, "transfer-encoding") {
			return nil
		}
		if !eqFold(value, "chunked") {
			return badResponse("unsupported transfer encoding:", value)
		}
		h.chunked = true
	case len("connection"):
		if !eqFold(name, "connection") {
			return nil
		}
		if hasToken(value, "close") {
			h.keep = false
		} else if h.http10 && hasToken(value, "keep-alive") {
			h.keep = true
		}
	}
	return nil
}

// discardBody reads the body as the head frames it, keeps its start (see
// capture) and throws the rest away; a body without a length runs to the
// end of the connection, which then cannot be kept.
func (c *rawClient) discardBody(h *respHead) error {
	switch {
	case c.t.noBody || h.code == 204 || h.code == 304 || (h.code >= 100 && h.code < 200):
		return nil
	case h.chunked:
		return c.discardChunked()
	case h.contentLength >= 0:
		if err := c.capture(int(min(h.contentLength, MaxBodyBytes))); err != nil {
			return eofToUnexpected(err)
		}
		_, err := c.br.Discard(int(h.contentLength))
		return eofToUnexpected(err)
	default:
		h.keep = false
		if err := c.capture(MaxBodyBytes); err != nil && err != io.EOF {
			return err
		}
		_, err := io.Copy(io.Discard, c.br)
		return err
	}
}

// capture copies the next n bytes of the body, as far as c.body has room,
// without consuming them: the Discard that follows reads past them as it
// always did. Peek waits for at most n bytes that are due anyway, and
// never more than the read buffer holds (MaxBodyBytes < rawReadBuf). An
// error means the body ended (or failed) before n bytes; it is returned
// here because Peek has taken it from the reader.
func (c *rawClient) capture(n int) error {
	n = min(n, cap(c.body)-len(c.body))
	if n <= 0 {
		return nil
	}
	b, err := c.br.Peek(n)
	c.body = append(c.body, b...)
	return err
}

// readBodyError marks a failure while reading the body, which errReason's
// callers report as "read body: ...", as the net/http path does.
type readBodyError struct{ err error }

func (e readBodyError) Error() string { return "read body: " + e.err.Error() }
func (e readBodyError) Unwrap() error { return e.err }

// discardChunked reads a chunked body (RFC 9112 §7.1) and its trailers.
func (c *rawClient) discardChunked() error {
	br := c.br
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return badResponse("malformed chunked encoding", line)
			}
			return eofToUnexpected(err)
		}
		line = trimEOL(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		line = bytes.TrimRight(line, " \t")
		n, ok := parseHex(line)
		if !ok {
			return badResponse("malformed chunked encoding", line)
		}
		if n == 0 {
			// Trailers, up to an empty line.
			for {
				line, err = br.ReadSlice('\n')
				if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
					return eofToUnexpected(err)
				}
				if err == nil && len(trimEOL(line)) == 0 {
					return nil
				}
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = br.ReadSlice('\n')
				}
				if err != nil {
					return eofToUnexpected(err)
				}
			}
		}
		if err := c.capture(int(min(n, MaxBodyBytes))); err != nil {
			return eofToUnexpected(err)
		}
		if _, err := br.Discard(int(n)); err != nil {
			return eofToUnexpected(err)
		}
		line, err = br.ReadSlice('\n')
		if err != nil {
			return eofToUnexpected(err)
		}
		if len(trimEOL(line)) != 0 {
			return badResponse("malformed chunked encoding", line)
		}
	}
}

func eofToUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// eqFold compares b with the lower-case ASCII s, ignoring b's case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds tok (lower case).
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if eqFold(bytes.Trim(item, " \t"), tok) {
			return true
		}
	}
	return false
}

func parseContentLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}
