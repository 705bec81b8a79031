package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/meshproof/meshproof/harness/environment"
)

// The fault primitives act on the container through the moby client. Those
// that (re)start a container re-read its published ports — the daemon picks
// new host ports — and wait for its probe, so a fault step that starts a
// service ends when the service answers again.

// Stop stops a service gracefully (SIGTERM, then SIGKILL after the grace
// period).
func (e *env) Stop(ctx context.Context, service string) error {
	s, err := e.state(service)
	if err != nil {
		return err
	}
	timeout := int(e.b.cfg.stopTimeout / time.Second)
	if _, err := e.cli.ContainerStop(ctx, s.id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("stop %s: %w", service, err)
	}
	return nil
}

// Kill sends SIGKILL: the crash, with no chance to flush or deregister.
func (e *env) Kill(ctx context.Context, service string) error {
	s, err := e.state(service)
	if err != nil {
		return err
	}
	if _, err := e.cli.ContainerKill(ctx, s.id, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return fmt.Errorf("kill %s: %w", service, err)
	}
	return nil
}

// Start starts a stopped or killed service and waits until it is ready.
func (e *env) Start(ctx context.Context, service string) error {
	s, err := e.state(service)
	if err != nil {
		return err
	}
	if _, err := e.cli.ContainerStart(ctx, s.id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", service, err)
	}
	return e.afterStart(ctx, service)
}

// Restart stops and starts a service (docker restart) and waits until it is
// ready again.
func (e *env) Restart(ctx context.Context, service string) error {
	s, err := e.state(service)
	if err != nil {
		return err
	}
	timeout := int(e.b.cfg.stopTimeout / time.Second)
	if _, err := e.cli.ContainerRestart(ctx, s.id, client.ContainerRestartOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("restart %s: %w", service, err)
	}
	return e.afterStart(ctx, service)
}

// Pause freezes every process of the service (cgroup freezer): connections
// stay open but nothing answers — a hung dependency.
func (e *env) Pause(ctx context.Context, service string) error {
	s, err := e.state(service)
	if err != nil {
		return err
	}
	if _, err := e.cli.ContainerPause(ctx, s.id, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pause %s: %w", service, err)
	}
	return nil
}

// Unpause thaws a paused service.
func (e *env) Unpause(ctx context.Context, service string) error {
	s, err := e.state(service)
	if err != nil {
		return err
	}
	if _, err := e.cli.ContainerUnpause(ctx, s.id, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpause %s: %w", service, err)
	}
	return nil
}

// afterStart re-resolves the published ports, resumes log streaming and waits
// for the probe within the service's ready deadline.
func (e *env) afterStart(ctx context.Context, service string) error {
	s, err := e.state(service)
	if err != nil {
		return err
	}
	ready := s.svc.Meshproof.ReadyTimeout
	if ready <= 0 {
		ready = e.b.cfg.defaultReady
	}
	ctx, cancel := context.WithTimeout(ctx, ready)
	defer cancel()
	if err := e.refreshPorts(ctx, service); err != nil {
		return fmt.Errorf("after start of %s: %w", service, err)
	}
	e.mu.Lock()
	lf := s.logs
	e.mu.Unlock()
	lf.resume()
	if err := e.waitReady(ctx, service); err != nil {
		return fmt.Errorf("after start of %s: %w", service, err)
	}
	return nil
}

var _ environment.Restarter = (*env)(nil)
