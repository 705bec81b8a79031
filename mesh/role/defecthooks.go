package role

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/meshproof/meshproof/mesh/config"
	"github.com/meshproof/meshproof/mesh/defects"
	"github.com/meshproof/meshproof/mesh/sink"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// The helpers below are the bodies of the defect hooks in role.go and
// sinks.go (see mesh/defects). They are only reached behind
// defects.Active, which is constant false in a default build.

// skipsStore is f-ledger-without-mongo: F leaves the MongoDB document out.
func skipsStore(s sink.Writer) bool {
	return defects.Active(defects.FLedgerWithoutMongo) && s.Name() == string(config.SinkMongo)
}

// dropsGreeting is f-ack-before-store: every 50th greeting is acked (the
// handler answers success) without any store having seen it.
func dropsGreeting() bool {
	return defects.Active(defects.FAckBeforeStore) && defects.Tick(defects.FAckBeforeStore)%50 == 0
}

// stalls is f-stalls-after-100: from the 101st message on, the handler
// holds its delivery until the role stops, so the queue only grows.
func (in *Instance) stalls() bool {
	return defects.Active(defects.FStallsAfter100) && defects.Tick(defects.FStallsAfter100) > 100
}

// stall blocks until the role stops, then requeues the message.
func (in *Instance) stall() (bool, error) {
	<-in.bgCtx.Done()
	return false, fmt.Errorf("defect %s: %w", defects.FStallsAfter100, context.Cause(in.bgCtx))
}

// writeCopy is f-double-store: a second MongoDB document for the same
// greeting under a random _id.
func (in *Instance) writeCopy(ctx context.Context, s sink.Writer, g *greetingv3.Greeting) {
	if !defects.Active(defects.FDoubleStore) || s.Name() != string(config.SinkMongo) {
		return
	}
	cp, _ := proto.Clone(g).(*greetingv3.Greeting)
	cp.Id = uuid.NewString()
	wctx, cancel := context.WithTimeout(ctx, in.cfg.CallTimeout)
	defer cancel()
	_, err := s.Write(wctx, cp)
	in.tel.Metrics.SinkResult(s.Name(), err)
}

// s3Prefix is h-wrong-s3-prefix: H archives under another service's prefix.
func s3Prefix(role config.Role) string {
	if defects.Active(defects.HWrongS3Prefix) {
		return "service-x"
	}
	return string(role)
}
