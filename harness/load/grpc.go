package load

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/meshproof/meshproof/harness/load/grpcx"
)

// grpcTransport calls one unary method. The request is marshalled once and
// its bytes sent verbatim; responses are not decoded (only the status
// matters), so a call costs no protobuf work on our side — unless
// GRPCCall.Decode asks for each reply to be unmarshalled and checked.
type grpcTransport struct {
	conns   []*grpc.ClientConn
	next    atomic.Uint32
	method  *grpcx.Method
	payload []byte
	md      []string // metadata key/value pairs, a traceparent slot last
	opts    []grpc.CallOption
	cfg     Config
}

// connsFor picks how many HTTP/2 connections to spread calls over: one
// connection's single writer becomes the bottleneck with many streams.
func connsFor(concurrency int) int {
	return max(1, min(4, concurrency/16))
}

func grpcAddress(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("load target %q: want grpc://host:port", target)
	}
	return u.Host, nil
}

func dialGRPC(target string) (*grpc.ClientConn, error) {
	addr, err := grpcAddress(target)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", target, err)
	}
	return conn, nil
}

func newGRPCTransport(ctx context.Context, cfg Config, concurrency int) (*grpcTransport, error) {
	t := &grpcTransport{cfg: cfg}
	for range connsFor(concurrency) {
		conn, err := dialGRPC(cfg.Target)
		if err != nil {
			t.close()
			return nil, err
		}
		t.conns = append(t.conns, conn)
	}
	m, err := resolveMethod(ctx, t.conns[0], cfg)
	if err != nil {
		t.close()
		return nil, err
	}
	t.method = m
	t.payload = m.Payload
	keys := make([]string, 0, len(cfg.GRPC.Metadata))
	for k := range cfg.GRPC.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.md = append(t.md, strings.ToLower(k), cfg.GRPC.Metadata[k])
	}
	t.md = append(t.md, "traceparent", "")
	t.opts = []grpc.CallOption{grpc.ForceCodecV2(rawCodec{})}
	return t, nil
}

// resolveMethod resolves the configured method once, with the request
// timeout as deadline.
func resolveMethod(ctx context.Context, conn *grpc.ClientConn, cfg Config) (*grpcx.Method, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	g := cfg.GRPC
	m, err := grpcx.Resolve(ctx, conn, grpcx.Call{
		Method: g.Method, ProtoFile: g.ProtoFile, ImportPaths: g.ImportPaths, Data: g.Data,
	})
	if err != nil {
		return nil, fmt.Errorf("resolve %s at %s: %w", g.Method, cfg.Target, err)
	}
	return m, nil
}

func (t *grpcTransport) close() {
	for _, c := range t.conns {
		_ = c.Close()
	}
}

func (t *grpcTransport) newClient() client {
	conn := t.conns[int(t.next.Add(1))%len(t.conns)]
	c := &grpcClient{t: t, conn: conn, md: append([]string(nil), t.md...), reply: &discard{}}
	if t.cfg.GRPC.Decode {
		// One reply message per worker, reset by every unmarshal: decoding
		// costs the parse, not a fresh message per call.
		c.reply = dynamicpb.NewMessage(t.method.Desc.Output())
	}
	return c
}

type grpcClient struct {
	t    *grpcTransport
	conn *grpc.ClientConn
	md   []string
	// reply is *discard (replies dropped) or the method's output message.
	reply any
}

func (c *grpcClient) do(ctx context.Context, traceparent string) outcome {
	ctx, cancel := context.WithTimeout(ctx, c.t.cfg.Timeout)
	defer cancel()
	c.md[len(c.md)-1] = traceparent
	ctx = metadata.AppendToOutgoingContext(ctx, c.md...)
	err := c.conn.Invoke(ctx, c.t.method.FullMethod, &c.t.payload, c.reply, c.t.opts...)
	if err == nil {
		return outcome{status: codes.OK.String(), ok: true}
	}
	st, _ := status.FromError(err)
	full := st.Message()
	msg := full
	if len(msg) > 100 {
		msg = msg[:100]
	}
	// A failure's status message is its body: the recorder keeps the first
	// few per code (the reason above is cut short to stay low-cardinality).
	return outcome{status: st.Code().String(), reason: st.Code().String() + ": " + msg, text: full, hasBody: true}
}

// discard is the reply type when replies are not decoded: rawCodec never
// decodes into it.
type discard struct{}

// rawCodec sends pre-marshalled request bytes (*[]byte). Replies bound for a
// *discard are dropped; those bound for a proto message are unmarshalled
// into it, and bytes that do not decode fail the call (gRPC reports it as
// Internal).
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return nil // *discard
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if err := proto.Unmarshal(buf.ReadOnlyData(), m); err != nil {
		return fmt.Errorf("decode reply as %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// Name is "proto" so the content type stays application/grpc+proto-compatible.
func (rawCodec) Name() string { return "proto" }
