package server

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain marks the ErrorInfo details the mesh attaches to its errors.
const ErrorDomain = "greeting.meshproof"

// Reasons of ErrorInfo.
const (
	ReasonDownstream = "DOWNSTREAM_FAILED"
	ReasonSink       = "SINK_FAILED"
)

// FailingService names the service where a mesh error started (the deepest
// peer that could not answer, or the role whose store failed), read from the
// ErrorInfo detail each hop carries forward. Empty if err has none.
func FailingService(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetDomain() == ErrorDomain {
			return ei.GetMetadata()["service"]
		}
	}
	return ""
}

// withFailing builds a status whose message is prefixed with the hop and
// whose ErrorInfo names the failing service.
func withFailing(code codes.Code, msg, reason, failing string, meta map[string]string) error {
	st := status.New(code, msg)
	md := map[string]string{"service": failing}
	maps.Copy(md, meta)
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: md}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// downstreamError wraps the error of a call to peer. origin reports whether
// the failure started at this hop (peer itself failed to answer), so only
// that hop logs it at error level.
func downstreamError(ctx context.Context, peer string, err error) (wrapped error, origin bool) {
	st := status.Convert(err)
	code := st.Code()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = codes.DeadlineExceeded
	}
	failing := FailingService(err)
	origin = failing == ""
	if origin {
		failing = peer
	}
	return withFailing(code, fmt.Sprintf("%s: %s", peer, st.Message()), ReasonDownstream, failing, nil), origin
}

// sinkError is the gRPC error of a failed store write at this role.
func sinkError(role, sinkName string, err error) error {
	// The caller prefixes the role (it knows us as its peer); name the sink here.
	return withFailing(codes.Unavailable, fmt.Sprintf("%s: %v", sinkName, err), ReasonSink, role, map[string]string{"sink": sinkName})
}
