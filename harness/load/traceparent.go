package load

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

// TraceID is a W3C trace id.
type TraceID [16]byte

// String is the 32-char lowercase hex form used by Jaeger and traceparent.
func (t TraceID) String() string { return hex.EncodeToString(t[:]) }

// traceparent builds "00-<trace id>-<parent id>-01" headers into a reused
// buffer. The parent span id is random and never exported by anyone, so the
// target's first span has a parent that does not exist in the trace store:
// that span is the trace's root.
type traceparent struct {
	buf [55]byte
}

func newTraceparent() *traceparent {
	tp := &traceparent{}
	copy(tp.buf[:], "00-")
	tp.buf[35] = '-'
	tp.buf[52] = '-'
	tp.buf[53], tp.buf[54] = '0', '1'
	return tp
}

// next draws a new trace id and parent span id and returns the header value.
// math/rand/v2's top-level functions use a per-thread ChaCha8 source: fast,
// lock-free and unpredictable enough for ids.
func (tp *traceparent) next() (TraceID, string) {
	var id TraceID
	for id == (TraceID{}) {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	var span [8]byte
	for span == ([8]byte{}) {
		binary.BigEndian.PutUint64(span[:], rand.Uint64())
	}
	hex.Encode(tp.buf[3:35], id[:])
	hex.Encode(tp.buf[36:52], span[:])
	return id, string(tp.buf[:])
}
