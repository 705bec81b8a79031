package topology

import (
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// hostPort finds candidate host:port pairs; boundaries are checked by hand
// because Go's regexp has no look-around.
var hostPort = regexp.MustCompile(`[A-Za-z0-9][A-Za-z0-9._-]*:[0-9]{1,5}`)

// dsnHost and dsnPort find the key=value form of libpq connection strings.
var (
	dsnHost = regexp.MustCompile(`(?:^|\s)host=(?:'([A-Za-z0-9._-]+)'|([A-Za-z0-9._-]+))(?:\s|$)`)
	dsnPort = regexp.MustCompile(`(?:^|\s)port=(?:'([0-9]{1,5})'|([0-9]{1,5}))(?:\s|$)`)
)

// Rewrite replaces every reference to a service's container port in s with
// the address resolve returns for it. It understands the three ways
// configuration names a peer:
//
//   - URLs: scheme://[user:pass@]service:port/path
//   - bare host:port, alone or in comma lists: service-b:50051,service-c:50051
//   - key=value DSNs: "host=postgres port=5432 dbname=x"
//
// A pair is rewritten only when resolve says ok (normally: a declared port of
// a known service, see Topology.Resolver); everything else — localhost,
// unknown hosts, undeclared ports, user:password — is left byte for byte.
func Rewrite(s string, resolve func(service string, port int) (addr string, ok bool)) string {
	s = rewriteDSN(s, resolve)
	return rewriteHostPort(s, resolve)
}

func rewriteHostPort(s string, resolve func(string, int) (string, bool)) string {
	matches := hostPort.FindAllStringIndex(s, -1)
	if matches == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		start, end := m[0], m[1]
		if start > 0 && isHostChar(s[start-1]) {
			continue // part of a longer token
		}
		if end < len(s) && !endsHostPort(s, end) {
			continue
		}
		host, portStr, _ := strings.Cut(s[start:end], ":")
		port, err := strconv.Atoi(portStr)
		if err != nil {
			continue
		}
		addr, ok := resolve(host, port)
		if !ok {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(addr)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

func isHostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// endsHostPort reports whether the character at i may follow a port: not a
// letter (service-b:50051abc), not "@" (user:5432@host is a password), not
// ":" or "-" (port mappings and ranges), and not a dot that continues a token.
func endsHostPort(s string, i int) bool {
	c := s[i]
	switch {
	case c == '@' || c == ':' || c == '-' || c == '_':
		return false
	case c == '.':
		return i+1 >= len(s) || !isHostChar(s[i+1])
	case isHostChar(c):
		return false
	}
	return true
}

func rewriteDSN(s string, resolve func(string, int) (string, bool)) string {
	if !strings.Contains(s, "host=") || !strings.Contains(s, "port=") {
		return s
	}
	hs := dsnHost.FindAllStringSubmatchIndex(s, -1)
	ps := dsnPort.FindAllStringSubmatchIndex(s, -1)
	if len(hs) != 1 || len(ps) != 1 {
		return s // none, or a multi-host list we do not guess about
	}
	hStart, hEnd := group(hs[0])
	pStart, pEnd := group(ps[0])
	port, err := strconv.Atoi(s[pStart:pEnd])
	if err != nil {
		return s
	}
	addr, ok := resolve(s[hStart:hEnd], port)
	if !ok {
		return s
	}
	newHost, newPort, err := net.SplitHostPort(addr)
	if err != nil {
		return s
	}
	type span struct {
		start, end int
		text       string
	}
	spans := []span{{hStart, hEnd, newHost}, {pStart, pEnd, newPort}}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start > spans[j].start })
	for _, sp := range spans {
		s = s[:sp.start] + sp.text + s[sp.end:]
	}
	return s
}

// group returns the span of whichever of the two value groups matched
// (quoted or bare).
func group(m []int) (int, int) {
	if m[2] >= 0 {
		return m[2], m[3]
	}
	return m[4], m[5]
}
