package traces

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func compactFixture(b *testing.B) []byte { return compact(b, fixture(b, "greeting-trace.json")) }

// BenchmarkDecodeSpans decodes one compact greeting trace (23 spans) on one
// goroutine; BenchmarkDecodeSpansRef is the jsonparser decoder it replaced.
func BenchmarkDecodeSpans(b *testing.B) {
	raw := compactFixture(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := DecodeSpans(raw, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSpansAttrs(b *testing.B) {
	raw := compactFixture(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := DecodeSpans(raw, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSpansRef(b *testing.B) {
	raw := compactFixture(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := decodeSpansRef(raw, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildTree is the other per-trace cost of judging.
func BenchmarkBuildTree(b *testing.B) {
	spans, err := DecodeSpans(compactFixture(b), false)
	require.NoError(b, err)
	for b.Loop() {
		BuildTree(spans)
	}
}
