package docker

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/meshproof/meshproof/harness/environment"
)

// logFollower streams one container's stdout and stderr into its log file.
// A stopped container ends the daemon's stream; resume() starts following
// again from where it ended, so a restarted service's lines land in the same
// file. Its goroutine ends on close (Down).
type logFollower struct {
	cli  *client.Client
	id   string
	file *os.File

	mu     sync.Mutex
	since  string
	err    error // the last failure to stream, until a stream works again
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// followLogs starts streaming the service's output to LogDir/<service>.log,
// from the container's first line.
func (e *env) followLogs(name string) { e.followLogsSince(name, time.Time{}) }

// followLogsSince streams only what the container writes from since on
// (zero: everything): an attachment's log file must hold the new run's
// lines, not the ones an earlier run already judged.
func (e *env) followLogsSince(name string, since time.Time) {
	path := e.logPath(name)
	if path == "" {
		return
	}
	s, err := e.state(name)
	if err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.b.logf("log file for %s: %v", name, err)
		e.mu.Lock()
		s.logs = &logFollower{err: fmt.Errorf("log file: %w", err)}
		e.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	lf := &logFollower{cli: e.cli, id: s.id, file: f, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	if !since.IsZero() {
		lf.since = daemonTime(since)
	}
	e.mu.Lock()
	s.logs = lf
	e.mu.Unlock()
	go lf.run()
}

func (l *logFollower) run() {
	defer close(l.done)
	defer l.file.Close()
	for {
		l.mu.Lock()
		since := l.since
		l.mu.Unlock()
		rc, err := l.cli.ContainerLogs(l.ctx, l.id, client.ContainerLogsOptions{
			ShowStdout: true, ShowStderr: true, Follow: true, Since: since,
		})
		if err == nil {
			// stdout and stderr go to one file in arrival order, like a terminal.
			_, err = stdcopy.StdCopy(l.file, l.file, rc)
			rc.Close()
		}
		if l.ctx.Err() == nil {
			l.setErr(err)
		}
		// The stream ended: the container stopped (or is gone). Wait for a
		// restart or the end of the run.
		l.mu.Lock()
		l.since = daemonTime(time.Now())
		l.mu.Unlock()
		select {
		case <-l.ctx.Done():
			return
		case <-l.wake:
		}
	}
}

func (l *logFollower) setErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

// failure is why the follower's lines stopped, "" while it works.
func (l *logFollower) failure() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		return ""
	}
	return l.err.Error()
}

// daemonTime is t in the form the logs API takes for Since.
func daemonTime(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// resume makes a follower whose container was started again read on.
func (l *logFollower) resume() {
	if l == nil {
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// close ends the follower. Down calls it after the container was stopped and
// removed, when the daemon's stream has already delivered the last line.
func (l *logFollower) close() {
	if l == nil || l.cancel == nil {
		return
	}
	l.cancel()
	<-l.done
}

// logTail returns the last lines of a service's log for error messages.
func (e *env) logTail(name string) string { return environment.LogTail(e.logPath(name)) }
