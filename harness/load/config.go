// Package load drives HTTP or unary gRPC traffic at a target and measures it.
//
// Two models: closed (N users, each sending its next request when the last
// one answered) and open (a constant or ramped arrival rate, with latency
// measured from the scheduled send time so that a stalled target shows up as
// latency instead of as fewer requests — coordinated omission).
//
// The hot path is built for millions of requests in bounded memory:
// connections and request objects are reused per worker, latencies stream
// into sharded HDR histograms, and only a reservoir of trace ids is kept.
// Every request carries a fresh W3C traceparent whose parent span is never
// exported, so the first span the target records is its trace's root.
package load

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Model is the load model.
type Model string

// Models.
const (
	// Closed: Users loops of send-wait-think.
	Closed Model = "closed"
	// Open: requests start at Rate per second whatever the target does.
	Open Model = "open"
)

// Config describes one load run. Addresses are already resolved to real
// host:port (the caller maps compose service names).
type Config struct {
	// Target is http(s)://host:port/path or grpc://host:port.
	Target  string
	Method  string // HTTP method, default GET (POST when Body is set)
	Headers map[string]string
	Body    []byte
	// GRPC describes the call for grpc:// targets.
	GRPC *GRPCCall

	Model Model
	// Users is the closed model's concurrency (the starting level when
	// Stages are given).
	Users int
	// Rate is the open model's arrivals per second (the starting level when
	// Stages are given).
	Rate float64
	// MaxInflight caps concurrent requests in the open model; a send due
	// while the cap is reached is dropped and counted. Default: enough for
	// Rate × Timeout.
	MaxInflight int

	// Duration of the measured load, after Warmup. With Requests set too,
	// whichever ends first wins.
	Duration time.Duration
	// Warmup runs first at the starting level; its requests count in the
	// totals (they change the target's data) but not in latency statistics.
	Warmup time.Duration
	// ThinkTime is each closed-model user's pause between requests.
	ThinkTime time.Duration
	// Timeout per request, default 10s.
	Timeout time.Duration
	// Requests, when > 0, is the exact number of measured (post-warm-up)
	// requests to send.
	Requests int
	// Stages ramp Users (closed) or Rate (open) linearly, one after the
	// other, after the warm-up; they replace Duration.
	Stages []Stage

	// TraceSample is how many trace ids (with outcomes) to keep, chosen
	// uniformly by reservoir sampling. Default 10000; negative keeps none.
	TraceSample int
}

// GRPCCall is a unary call resolved by server reflection or from a .proto file.
type GRPCCall struct {
	// Method is "package.Service/Method".
	Method string
	// ProtoFile, when set, is compiled at run time instead of using
	// reflection; ImportPaths are searched for it and its imports.
	ProtoFile   string
	ImportPaths []string
	// Data is the request message as protojson.
	Data string
	// Metadata is sent with every call.
	Metadata map[string]string
	// Decode unmarshals every reply into the method's output message and
	// fails the call when the bytes do not decode. A scenario that asserts
	// on replies needs this; off (the default), replies are dropped unread,
	// which keeps a call free of protobuf work and allocation on our side.
	Decode bool
}

// Stage moves the level (users or rate) linearly to Target over Duration.
type Stage struct {
	Duration time.Duration
	Target   float64
}

// Defaults.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultTraceSample = 10000
)

// transportKind is what the target's scheme selects.
type transportKind int

const (
	kindHTTP transportKind = iota
	kindGRPC
)

// normalized validates cfg and fills in defaults.
func (cfg Config) normalized() (Config, transportKind, error) {
	u, err := url.Parse(cfg.Target)
	if err != nil || u.Host == "" {
		return cfg, 0, fmt.Errorf("load target %q: want http(s)://host:port/path or grpc://host:port", cfg.Target)
	}
	var kind transportKind
	switch u.Scheme {
	case "http", "https":
		kind = kindHTTP
		if cfg.Method == "" {
			cfg.Method = "GET"
			if len(cfg.Body) > 0 {
				cfg.Method = "POST"
			}
		}
		cfg.Method = strings.ToUpper(cfg.Method)
	case "grpc":
		kind = kindGRPC
		if cfg.GRPC == nil || cfg.GRPC.Method == "" {
			return cfg, 0, fmt.Errorf("load target %s: a grpc target needs grpc.method", cfg.Target)
		}
	default:
		return cfg, 0, fmt.Errorf("load target %q: unsupported scheme %q (http, https, grpc)", cfg.Target, u.Scheme)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.TraceSample == 0 {
		cfg.TraceSample = DefaultTraceSample
	}
	if cfg.Duration < 0 || cfg.Warmup < 0 || cfg.ThinkTime < 0 || cfg.Requests < 0 {
		return cfg, 0, errors.New("load: durations and requests must not be negative")
	}
	for i, s := range cfg.Stages {
		if s.Duration <= 0 || s.Target < 0 {
			return cfg, 0, fmt.Errorf("load stage %d: want a positive duration and a non-negative target", i+1)
		}
	}
	if len(cfg.Stages) > 0 {
		cfg.Duration = 0
		for _, s := range cfg.Stages {
			cfg.Duration += s.Duration
		}
	}
	if cfg.Duration == 0 && cfg.Requests == 0 {
		return cfg, 0, errors.New("load: set a duration, a request count or stages")
	}
	switch cfg.Model {
	case Closed, "":
		cfg.Model = Closed
		if cfg.Users <= 0 && len(cfg.Stages) == 0 {
			return cfg, 0, errors.New("load: the closed model needs users > 0")
		}
	case Open:
		if cfg.Rate <= 0 && len(cfg.Stages) == 0 {
			return cfg, 0, errors.New("load: the open model needs rate > 0")
		}
		if cfg.MaxInflight <= 0 {
			peak := cfg.Rate
			for _, s := range cfg.Stages {
				peak = max(peak, s.Target)
			}
			cfg.MaxInflight = max(100, int(peak*cfg.Timeout.Seconds()))
		}
	default:
		return cfg, 0, fmt.Errorf("load: unknown model %q (closed, open)", cfg.Model)
	}
	return cfg, kind, nil
}

// base is the starting level: Users or Rate, else the first stage's target
// (so a warm-up before a ramp from zero still sends something).
func (cfg Config) base() float64 {
	b := float64(cfg.Users)
	if cfg.Model == Open {
		b = cfg.Rate
	}
	return b
}

// peak is the highest level the run reaches.
func (cfg Config) peak() float64 {
	p := cfg.base()
	for _, s := range cfg.Stages {
		p = max(p, s.Target)
	}
	if p == 0 && cfg.Warmup > 0 && len(cfg.Stages) > 0 {
		p = cfg.Stages[0].Target
	}
	return p
}

// level is the users or rate wanted at offset t from the start of the run.
func (cfg Config) level(t time.Duration) float64 {
	b := cfg.base()
	if t < cfg.Warmup {
		if b == 0 && len(cfg.Stages) > 0 {
			return cfg.Stages[0].Target
		}
		return b
	}
	t -= cfg.Warmup
	from := b
	for _, s := range cfg.Stages {
		if t < s.Duration {
			return from + (s.Target-from)*float64(t)/float64(s.Duration)
		}
		t -= s.Duration
		from = s.Target
	}
	return from
}
