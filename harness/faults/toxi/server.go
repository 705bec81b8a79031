// Package toxi puts toxiproxy (github.com/Shopify/toxiproxy/v2) in front of
// service ports so faults can slow or cut one link without touching the
// service: Server runs toxiproxy inside the harness process (local backend,
// everything on 127.0.0.1), Client drives a toxiproxy server elsewhere —
// a container on the run's network (docker backend) — through its HTTP API.
// Both implement faults.Links with the same toxic names, so a link is
// healed the same way whichever backend set it up.
package toxi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Toxic names: one of each per link, so Latency replaces an earlier latency
// and Heal knows exactly what to remove.
const (
	latencyToxic = "meshproof_latency"
	dropUp       = "meshproof_drop_up"
	dropDown     = "meshproof_drop_down"
)

// Server is an in-process toxiproxy. Its proxies listen on 127.0.0.1 only.
type Server struct {
	api *toxiproxy.ApiServer

	mu      sync.Mutex
	proxies map[string]*toxiproxy.Proxy
	closed  bool
}

// NewServer returns a server with no proxies; it starts nothing until
// Proxy is called. Toxiproxy's own logging is discarded: the faults
// timeline says what was done to which link.
func NewServer() *Server {
	return &Server{
		api:     toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: map[string]*toxiproxy.Proxy{},
	}
}

// Proxy starts a proxy for service:port on a free 127.0.0.1 port that
// forwards to upstream, and returns the address consumers must use. Its
// signature is what a backend calls for each link it must interpose
// (environment.Options.Proxy, proposed), before starting any consumer.
func (s *Server) Proxy(ctx context.Context, service string, port int, upstream string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s:%d", service, port)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", fmt.Errorf("proxy %s: server closed", name)
	}
	if _, ok := s.proxies[name]; ok {
		return "", fmt.Errorf("proxy %s: already exists", name)
	}
	p := toxiproxy.NewProxy(s.api, name, "127.0.0.1:0", upstream)
	if err := s.api.Collection.Add(p, true); err != nil {
		return "", fmt.Errorf("proxy %s -> %s: %w", name, upstream, err)
	}
	s.proxies[name] = p
	return p.Listen, nil
}

// Handler serves toxiproxy's HTTP API over this server's proxies, for
// tools that want to inspect or drive them (and for testing Client).
func (s *Server) Handler() http.Handler { return s.api.Routes() }

func (s *Server) proxy(link string) (*toxiproxy.Proxy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.proxies[link]
	if !ok {
		return nil, fmt.Errorf("no proxy in front of %s", link)
	}
	return p, nil
}

// Latency delays each response chunk on the link by d (the downstream
// direction only, so a request/response round trip gains d once).
func (s *Server) Latency(ctx context.Context, link string, d time.Duration) error {
	p, err := s.proxy(link)
	if err != nil {
		return err
	}
	if err := removeToxic(ctx, p, latencyToxic); err != nil {
		return fmt.Errorf("latency on %s: %w", link, err)
	}
	return addToxic(p, latencySpec(d))
}

// Drop silences the link both ways, connections left open (toxiproxy's
// timeout toxic with timeout 0).
func (s *Server) Drop(ctx context.Context, link string) error {
	p, err := s.proxy(link)
	if err != nil {
		return err
	}
	for _, spec := range dropSpecs() {
		if err := removeToxic(ctx, p, spec.Name); err != nil {
			return fmt.Errorf("drop on %s: %w", link, err)
		}
		if err := addToxic(p, spec); err != nil {
			return fmt.Errorf("drop on %s: %w", link, err)
		}
	}
	return nil
}

// Heal removes the latency and drop toxics from the link.
func (s *Server) Heal(ctx context.Context, link string) error {
	p, err := s.proxy(link)
	if err != nil {
		return err
	}
	for _, name := range []string{latencyToxic, dropUp, dropDown} {
		if err := removeToxic(ctx, p, name); err != nil {
			return fmt.Errorf("heal %s: %w", link, err)
		}
	}
	return nil
}

// Close stops every proxy, closing the connections through them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if err := s.api.Collection.Clear(); err != nil {
		return fmt.Errorf("stop proxies: %w", err)
	}
	return nil
}

// toxicSpec is a toxic as toxiproxy's API (and AddToxicJson) takes it.
type toxicSpec struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

func latencySpec(d time.Duration) toxicSpec {
	return toxicSpec{Name: latencyToxic, Type: "latency", Stream: "downstream", Toxicity: 1,
		Attributes: map[string]any{"latency": d.Milliseconds(), "jitter": 0}}
}

func dropSpecs() []toxicSpec {
	return []toxicSpec{
		{Name: dropUp, Type: "timeout", Stream: "upstream", Toxicity: 1, Attributes: map[string]any{"timeout": 0}},
		{Name: dropDown, Type: "timeout", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{"timeout": 0}},
	}
}

func addToxic(p *toxiproxy.Proxy, spec toxicSpec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if _, err := p.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("add toxic %s: %w", spec.Name, err)
	}
	return nil
}

// removeToxic removes a toxic if present.
func removeToxic(ctx context.Context, p *toxiproxy.Proxy, name string) error {
	err := p.Toxics.RemoveToxic(ctx, name)
	if err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
		return fmt.Errorf("remove toxic %s: %w", name, err)
	}
	return nil
}
