package load_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	rpbalpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meshproof/meshproof/harness/load"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// greeter records what it was called with. The stubs are used by this test
// server only; the engine under test resolves the method at run time.
type greeter struct {
	greetingv3.UnimplementedGreetingServiceServer
	mu       sync.Mutex
	requests []*greetingv3.GreetingRequest
	md       []metadata.MD
	fail     atomic.Bool
}

func (g *greeter) Greeting(ctx context.Context, req *greetingv3.GreetingRequest) (*greetingv3.GreetingResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	g.mu.Lock()
	g.requests = append(g.requests, req)
	g.md = append(g.md, md)
	g.mu.Unlock()
	if g.fail.Load() {
		return nil, status.Error(codes.Unavailable, "downstream gone")
	}
	return &greetingv3.GreetingResponse{Greeting: []*greetingv3.Greeting{{Id: req.GetGreeting().GetId(), Service: "test"}}}, nil
}

type reflectionMode int

const (
	noReflection reflectionMode = iota
	reflectionV1AndAlpha
	reflectionAlphaOnly
)

func startGreeter(t testing.TB, mode reflectionMode) (*greeter, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	g := &greeter{}
	greetingv3.RegisterGreetingServiceServer(s, g)
	switch mode {
	case reflectionV1AndAlpha:
		reflection.Register(s)
	case reflectionAlphaOnly:
		rpbalpha.RegisterServerReflectionServer(s, reflection.NewServer(reflection.ServerOptions{Services: s}))
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return g, "grpc://" + l.Addr().String()
}

const greetingData = `{"greeting": {"id": "req-42", "service": "load", "message": "hello mesh"}}`

func wantRequest() *greetingv3.GreetingRequest {
	return &greetingv3.GreetingRequest{Greeting: &greetingv3.Greeting{Id: "req-42", Service: "load", Message: "hello mesh"}}
}

func checkCalls(t *testing.T, g *greeter, n int, res *load.Result) {
	t.Helper()
	assert.EqualValues(t, n, res.Requests)
	assert.EqualValues(t, n, res.OK)
	assert.Equal(t, map[string]int64{"OK": int64(n)}, res.Status)
	g.mu.Lock()
	defer g.mu.Unlock()
	require.Len(t, g.requests, n)
	for i, req := range g.requests {
		assert.True(t, proto.Equal(wantRequest(), req), "request %d is %v", i, req)
		tp := g.md[i].Get("traceparent")
		require.Len(t, tp, 1)
		assert.Regexp(t, traceparentRE, tp[0])
		assert.Equal(t, []string{"meshproof"}, g.md[i].Get("x-load"))
	}
}

func TestGRPCByReflection(t *testing.T) {
	for name, mode := range map[string]reflectionMode{"v1": reflectionV1AndAlpha, "v1alpha fallback": reflectionAlphaOnly} {
		t.Run(name, func(t *testing.T) {
			g, target := startGreeter(t, mode)
			cfg := load.Config{
				Target: target, Users: 3, Requests: 30,
				GRPC: &load.GRPCCall{
					Method:   "greeting.v3.GreetingService/Greeting",
					Data:     greetingData,
					Metadata: map[string]string{"X-Load": "meshproof"},
				},
			}
			require.NoError(t, load.Preflight(context.Background(), cfg))
			res, err := load.Run(context.Background(), cfg)
			require.NoError(t, err)
			checkCalls(t, g, 30, res)
		})
	}
}

func TestGRPCByProtoFile(t *testing.T) {
	g, target := startGreeter(t, noReflection)
	cfg := load.Config{
		Target: target, Model: load.Open, Rate: 200, Requests: 40,
		GRPC: &load.GRPCCall{
			Method:      "greeting.v3.GreetingService/Greeting",
			ProtoFile:   "../../proto/greeting/v3/greeting.proto",
			ImportPaths: []string{"../../proto/third_party", "/usr/include"},
			Data:        greetingData,
			Metadata:    map[string]string{"x-load": "meshproof"},
		},
	}
	require.NoError(t, load.Preflight(context.Background(), cfg))
	res, err := load.Run(context.Background(), cfg)
	require.NoError(t, err)
	checkCalls(t, g, 40, res)
}

func TestGRPCErrorsAreCountedByCode(t *testing.T) {
	g, target := startGreeter(t, reflectionV1AndAlpha)
	g.fail.Store(true)
	res, err := load.Run(context.Background(), load.Config{
		Target: target, Users: 2, Requests: 10,
		GRPC: &load.GRPCCall{Method: "/greeting.v3.GreetingService/Greeting"},
	})
	require.NoError(t, err)
	assert.EqualValues(t, 10, res.Errors)
	assert.Equal(t, map[string]int64{"Unavailable": 10}, res.Status)
	assert.Equal(t, map[string]int64{"Unavailable: downstream gone": 10}, res.ErrorReasons)
	assert.Equal(t, map[string][]string{"Unavailable": {"downstream gone", "downstream gone", "downstream gone"}}, res.Bodies,
		"a failure's status message is its body; a success has none")
}

func TestGRPCResolutionErrors(t *testing.T) {
	_, target := startGreeter(t, reflectionV1AndAlpha)
	for name, call := range map[string]load.GRPCCall{
		"unknown method":  {Method: "greeting.v3.GreetingService/Nope"},
		"unknown service": {Method: "greeting.v3.Nope/Greeting"},
		"bad data":        {Method: "greeting.v3.GreetingService/Greeting", Data: `{"nope": 1}`},
		"missing proto":   {Method: "greeting.v3.GreetingService/Greeting", ProtoFile: "nope.proto"},
	} {
		err := load.Preflight(context.Background(), load.Config{Target: target, Users: 1, Requests: 1, GRPC: &call})
		assert.Error(t, err, name)
		if err != nil {
			assert.Contains(t, err.Error(), target, name)
		}
	}
}

func TestGRPCDecodedRepliesPass(t *testing.T) {
	_, target := startGreeter(t, reflectionV1AndAlpha)
	res, err := load.Run(context.Background(), load.Config{
		Target: target, Users: 2, Requests: 20,
		GRPC: &load.GRPCCall{Method: "greeting.v3.GreetingService/Greeting", Data: greetingData, Decode: true},
	})
	require.NoError(t, err)
	assert.EqualValues(t, 20, res.OK)
	assert.Zero(t, res.Errors)
}

// rawBytes is a server codec that sends a handler's *[]byte verbatim, so a
// test server can answer bytes that are no protobuf message.
type rawBytes struct{}

func (rawBytes) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawBytes) Unmarshal(mem.BufferSlice, any) error { return nil }
func (rawBytes) Name() string                         { return "proto" }

// startGarbler serves GreetingService/Greeting answering undecodable bytes;
// the method is resolved from the .proto file (no reflection).
func startGarbler(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer(grpc.ForceServerCodecV2(rawBytes{}))
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "greeting.v3.GreetingService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Greeting", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			garbage := []byte{0xff, 0xff, 0xff} // field 0x1f… with wire type 7: never valid
			return &garbage, nil
		}}},
	}, struct{}{})
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return "grpc://" + l.Addr().String()
}

func TestGRPCDecodeFailsUndecodableReplies(t *testing.T) {
	target := startGarbler(t)
	call := load.GRPCCall{
		Method:      "greeting.v3.GreetingService/Greeting",
		ProtoFile:   "../../proto/greeting/v3/greeting.proto",
		ImportPaths: []string{"../../proto/third_party", "/usr/include"},
	}
	// Not decoded, the garbage passes: only the status counts.
	res, err := load.Run(context.Background(), load.Config{Target: target, Users: 1, Requests: 5, GRPC: &call})
	require.NoError(t, err)
	assert.EqualValues(t, 5, res.OK)

	call.Decode = true
	res, err = load.Run(context.Background(), load.Config{Target: target, Users: 1, Requests: 5, GRPC: &call})
	require.NoError(t, err)
	assert.EqualValues(t, 5, res.Errors)
	assert.Equal(t, map[string]int64{"Internal": 5}, res.Status)
	for reason := range res.ErrorReasons {
		assert.Contains(t, reason, "decode reply as greeting.v3.GreetingResponse")
	}
}
