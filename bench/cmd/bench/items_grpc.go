package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/meshproof/meshproof/bench"
)

// greetingMethod is the unary call of the grpc item, as our engine and ghz
// name it.
const (
	greetingMethod    = "greeting.v3.GreetingService/Greeting"
	greetingMethodGhz = "greeting.v3.GreetingService.Greeting"
)

// itemThroughputGRPC is the grpc item: ours vs ghz, unary calls to a
// greeting service with reflection (the bench's own, in the target server
// process). Ours runs two ways: replies decoded into dynamicpb and checked
// (what a scenario asserting on replies does, and what ghz always does)
// and replies dropped unread. A round with errors is excluded from the
// ratios and listed in results.json.
func (r *runner) itemThroughputGRPC(ctx context.Context) error {
	// ghz spreads its workers over --connections; give it as many HTTP/2
	// connections as our engine opens for 50 users, so both multiplex alike.
	nconn := max(1, min(4, conns/16))
	r.logf("item %s: gRPC throughput, %d workers over %d connections, %d rounds × %s", itemGRPC, conns, nconn, r.rounds, r.round)
	timeout := 3*r.round + 30*time.Second
	// ghz runs a call count, not a duration: with -z it cancels the calls
	// in flight at the end and counts them as errors, which would exclude
	// every one of its rounds. The count is sized from its last round so
	// that a round lasts about as long as ours.
	ghzRate := 10_000.0
	rps, rounds := r.interleave(ctx, []string{"ours", "ours-decoded", "ghz"}, func(ctx context.Context, tool string) (roundOut, error) {
		if tool != "ghz" {
			args := []string{"-target", "grpc://" + r.srv.grpc, "-grpc-method", greetingMethod,
				"-users", strconv.Itoa(conns), "-duration", secs(r.round)}
			if tool == "ours-decoded" {
				args = append(args, "-grpc-decode")
			}
			s, u, err := r.engine(ctx, timeout, args...)
			return roundOut{s.RPS, s.Requests, s.Errors, u}, err
		}
		n := max(1000, int(ghzRate*r.round.Seconds()))
		res, u, err := r.runGhz(ctx, timeout, "--insecure", "--call", greetingMethodGhz, "-d", "{}",
			"-c", strconv.Itoa(conns), "--connections", strconv.Itoa(nconn), "-n", strconv.Itoa(n), "--format", "json", r.srv.grpc)
		if err == nil && res.RPS > 0 {
			ghzRate = res.RPS
		}
		return roundOut{res.RPS, res.Requests, res.Errors, u}, err
	})
	r.details["grpc"] = map[string]any{"workers": conns, "connections": nconn, "round_seconds": r.round.Seconds(), "rounds": rounds}
	f := ratioFigure(itemGRPC, "gRPC throughput, replies decoded, ours ÷ ghz", "ours-decoded", "ghz", rps, bench.AtLeast(1.5), rounds)
	f.Note = strings.TrimPrefix(f.Note+"; ghz decodes every reply too; it runs a call count sized to the round", "; ")
	r.add(f)
	r.add(ratioFigure(itemGRPC, "gRPC throughput, replies not decoded, ours ÷ ghz", "ours", "ghz", rps, nil, rounds))
	r.add(cpuFigure(itemGRPC, "CPU per gRPC call, replies decoded, ours ÷ ghz", "ours-decoded", "ghz", rounds))
	r.add(cpuFigure(itemGRPC, "CPU per gRPC call, replies not decoded, ours ÷ ghz", "ours", "ghz", rounds))
	return nil
}
