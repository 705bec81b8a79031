package traces

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a small single-pass JSON reader for DecodeSpans: it walks the
// bytes once, front to back, and the caller descends into the values it
// wants while skip validates and steps over the rest. Errors are sticky:
// after the first one every method returns zero values and every loop ends,
// so the walking code checks err once, where it is convenient.
type scanner struct {
	d     []byte
	i     int
	err   error
	depth int // nesting of the values skip is inside
}

// maxDepth bounds nesting, as encoding/json does, so hostile input cannot
// grow the stack without end.
const maxDepth = 10000

// strStop marks the bytes that end a run of plain string content: the
// closing quote, an escape, and control characters (invalid in JSON).
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func (s *scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("decode trace: offset %d: %s", s.i, fmt.Sprintf(format, args...))
	}
	s.i = len(s.d)
}

// setErr records a semantic error (one about a value, not the syntax).
func (s *scanner) setErr(err error) {
	if s.err == nil {
		s.err = err
	}
	s.i = len(s.d)
}

func (s *scanner) ws() {
	for s.i < len(s.d) {
		switch s.d[s.i] {
		case ' ', '\n', '\r', '\t':
			s.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *scanner) peek() byte {
	if s.i < len(s.d) && s.d[s.i] > ' ' { // the usual case, inlined
		return s.d[s.i]
	}
	s.ws()
	if s.i < len(s.d) {
		return s.d[s.i]
	}
	return 0
}

func (s *scanner) unexpected(want string) {
	if s.i >= len(s.d) {
		s.fail("unexpected end of input, want %s", want)
	} else {
		s.fail("unexpected %q, want %s", s.d[s.i], want)
	}
}

// open consumes c ('{' or '['), reporting whether it was there.
func (s *scanner) open(c byte) bool {
	if s.peek() != c {
		s.unexpected(string(c))
		return false
	}
	s.i++
	return true
}

// next steps to the next member of the object or array just opened, with
// close its closing bracket: it consumes the ',' between members, or the
// closing bracket, in which case it returns false.
//
//	for first := true; s.next(&first, '}'); { key := s.key(); ... }
func (s *scanner) next(first *bool, close byte) bool {
	c := s.peek()
	if c == close {
		s.i++
		return false
	}
	if *first {
		*first = false
		if s.i >= len(s.d) {
			s.unexpected(string(close))
			return false
		}
		return true
	}
	if c != ',' {
		s.unexpected(fmt.Sprintf("',' or '%c'", close))
		return false
	}
	s.i++
	return true
}

// key reads an object key and its colon. Keys with escapes are unescaped
// (allocating), plain ones are returned in place.
func (s *scanner) key() []byte {
	if s.peek() != '"' {
		s.unexpected("an object key")
		return nil
	}
	k, esc := s.str()
	if esc {
		k = []byte(unescape(k))
	}
	if s.peek() != ':' {
		s.unexpected("':'")
		return nil
	}
	s.i++
	return k
}

// str reads the string at s.i (a '"'), returning its raw content and
// whether that holds escapes, and moves past the closing quote.
func (s *scanner) str() ([]byte, bool) {
	d := s.d
	start := s.i + 1
	i, esc := start, false
	for {
		// Eight bytes at a time while none of them can end the run.
		for i+8 <= len(d) && !stopIn8(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && !strStop[d[i]] {
			i++
		}
		if i >= len(d) {
			s.i = start - 1
			s.fail("unterminated string")
			return nil, false
		}
		switch d[i] {
		case '"':
			s.i = i + 1
			return d[start:i], esc
		case '\\':
			esc = true
			if i+1 >= len(d) {
				s.i = start - 1
				s.fail("unterminated string")
				return nil, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || hex4(d[i+2:i+6]) < 0 {
					s.i = i
					s.fail("invalid \\u escape")
					return nil, false
				}
				i += 6
			default:
				s.i = i
				s.fail("invalid escape \\%c", d[i+1])
				return nil, false
			}
		default:
			s.i = i
			s.fail("control character %#02x in string", d[i])
			return nil, false
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// stopIn8 reports whether any of the 8 bytes in x is '"', '\\' or below
// 0x20 (a word-at-a-time test; it never misses one).
func stopIn8(x uint64) bool {
	quote := x ^ (ones * '"')
	bslash := x ^ (ones * '\\')
	return ((quote-ones)&^quote|(bslash-ones)&^bslash|(x-ones*0x20)&^x)&highs != 0
}

// strValue reads a string value and unescapes it.
func (s *scanner) strValue() string {
	raw, esc := s.str()
	if esc {
		return unescape(raw)
	}
	return string(raw)
}

// raw reads any value and returns its text: a string's content, still
// escaped, or the JSON text of anything else (as jsonparser gives values).
// isStr tells which.
func (s *scanner) raw() (v []byte, isStr bool) {
	if s.peek() == '"' {
		v, _ = s.str()
		return v, true
	}
	start := s.i
	s.skip()
	if s.err != nil {
		return nil, false
	}
	return s.d[start:s.i], false
}

// skip validates and steps over one value of any kind.
func (s *scanner) skip() {
	switch c := s.peek(); c {
	case '"':
		s.str()
	case '{':
		if s.depth++; s.depth > maxDepth {
			s.fail("nesting deeper than %d", maxDepth)
			return
		}
		s.i++
		for first := true; s.next(&first, '}'); {
			s.key()
			s.skip()
		}
		s.depth--
	case '[':
		if s.depth++; s.depth > maxDepth {
			s.fail("nesting deeper than %d", maxDepth)
			return
		}
		s.i++
		for first := true; s.next(&first, ']'); {
			s.skip()
		}
		s.depth--
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	default:
		s.number()
	}
}

func (s *scanner) literal(lit string) {
	if len(s.d)-s.i < len(lit) || string(s.d[s.i:s.i+len(lit)]) != lit {
		s.unexpected(lit)
		return
	}
	s.i += len(lit)
}

// number steps over -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() {
	d, i := s.d, s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		s.i = i
		s.unexpected("a value")
		return
	}
	if i < len(d) && d[i] == '.' {
		if j := digits(d, i+1); j > i+1 {
			i = j
		} else {
			s.i = i + 1
			s.unexpected("a digit")
			return
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if j := digits(d, i); j > i {
			i = j
		} else {
			s.i = i
			s.unexpected("a digit")
			return
		}
	}
	s.i = i
}

func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// hex4 decodes four hex digits, -1 if they are not.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape decodes the content of a string that str has validated. Like
// encoding/json, it joins surrogate pairs and turns a lone surrogate into
// U+FFFD; bytes that are not UTF-8 pass through unchanged.
func unescape(raw []byte) string {
	return string(appendUnescape(make([]byte, 0, len(raw)), raw))
}

// appendUnescape appends the decoded content of a validated string to b.
func appendUnescape(b, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
			continue
		default: // '"', '\\', '/'
			b = append(b, raw[i+1])
		}
		i += 2
	}
	return b
}
