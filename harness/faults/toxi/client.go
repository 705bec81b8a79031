package toxi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client drives a toxiproxy server through its HTTP API — the toxiproxy
// container of a docker run, whose API port is published on 127.0.0.1.
// Unlike toxiproxy's own client package it takes a context on every call,
// so a wedged API never outlives the run.
type Client struct {
	base string
	http *http.Client
}

// NewClient talks to the API at addr ("127.0.0.1:8474" or a URL).
func NewClient(addr string) *Client {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Client{base: strings.TrimSuffix(addr, "/"), http: &http.Client{Timeout: 30 * time.Second}}
}

// CreateProxy creates and enables a proxy named service:port listening on
// listen (an address inside the toxiproxy server's network namespace) and
// forwarding to upstream, and returns the address it listens on (port 0
// resolved). A backend calls it while setting up the run.
func (c *Client) CreateProxy(ctx context.Context, name, listen, upstream string) (string, error) {
	body := map[string]any{"name": name, "listen": listen, "upstream": upstream, "enabled": true}
	var created struct {
		Listen string `json:"listen"`
	}
	if err := c.send(ctx, http.MethodPost, "/proxies", body, &created, http.StatusCreated); err != nil {
		return "", fmt.Errorf("create proxy %s: %w", name, err)
	}
	return created.Listen, nil
}

// Latency delays each response chunk on the link by d.
func (c *Client) Latency(ctx context.Context, link string, d time.Duration) error {
	if err := c.remove(ctx, link, latencyToxic); err != nil {
		return fmt.Errorf("latency on %s: %w", link, err)
	}
	if err := c.add(ctx, link, latencySpec(d)); err != nil {
		return fmt.Errorf("latency on %s: %w", link, err)
	}
	return nil
}

// Drop silences the link both ways, connections left open.
func (c *Client) Drop(ctx context.Context, link string) error {
	for _, spec := range dropSpecs() {
		if err := c.remove(ctx, link, spec.Name); err != nil {
			return fmt.Errorf("drop on %s: %w", link, err)
		}
		if err := c.add(ctx, link, spec); err != nil {
			return fmt.Errorf("drop on %s: %w", link, err)
		}
	}
	return nil
}

// Heal removes the latency and drop toxics from the link.
func (c *Client) Heal(ctx context.Context, link string) error {
	for _, name := range []string{latencyToxic, dropUp, dropDown} {
		if err := c.remove(ctx, link, name); err != nil {
			return fmt.Errorf("heal %s: %w", link, err)
		}
	}
	return nil
}

func (c *Client) add(ctx context.Context, link string, spec toxicSpec) error {
	return c.send(ctx, http.MethodPost, "/proxies/"+url.PathEscape(link)+"/toxics", spec, nil, http.StatusOK)
}

// remove deletes a toxic; one that is not there is not an error.
func (c *Client) remove(ctx context.Context, link, toxic string) error {
	err := c.send(ctx, http.MethodDelete, "/proxies/"+url.PathEscape(link)+"/toxics/"+url.PathEscape(toxic), nil, nil, http.StatusNoContent)
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusNotFound && strings.Contains(se.body, "toxic not found") {
		return nil
	}
	return err
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("toxiproxy API: %d %s", e.code, e.body) }

func (c *Client) send(ctx context.Context, method, path string, body, out any, want int) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// The API refuses browser user agents; say who we are.
	req.Header.Set("User-Agent", "meshproof")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != want {
		return &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
	}
	return nil
}
