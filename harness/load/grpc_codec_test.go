package load

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// Replies not decoded cost nothing: the codec drops them without
// allocating, so Decode off keeps the call's hot path allocation-free.
func TestRawCodecDropsRepliesWithoutAllocating(t *testing.T) {
	data := mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x02, 0x08, 0x01})}
	reply := &discard{}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := (rawCodec{}).Unmarshal(data, reply); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

// Decoded replies land in the reused dynamic message, reset each time.
func TestRawCodecDecodesIntoTheReplyMessage(t *testing.T) {
	want := &greetingv3.GreetingResponse{Greeting: []*greetingv3.Greeting{{Id: "x", Service: "service-c"}}}
	b, err := proto.Marshal(want)
	require.NoError(t, err)
	reply := dynamicpb.NewMessage(want.ProtoReflect().Descriptor())
	for range 2 {
		require.NoError(t, (rawCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, reply))
	}
	got := &greetingv3.GreetingResponse{}
	rb, err := proto.Marshal(reply)
	require.NoError(t, err)
	require.NoError(t, proto.Unmarshal(rb, got))
	assert.True(t, proto.Equal(want, got), "the second decode replaced the first: %v", got)

	err = (rawCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0xff, 0xff})}, reply)
	assert.ErrorContains(t, err, "decode reply as greeting.v3.GreetingResponse")
}
