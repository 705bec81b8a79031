package docker

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
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
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// followLogs starts streaming the service's output to LogDir/<service>.log.
func (e *env) followLogs(name string) {
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
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	lf := &logFollower{cli: e.cli, id: s.id, file: f, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
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
			_, _ = stdcopy.StdCopy(l.file, l.file, rc)
			rc.Close()
		}
		// The stream ended: the container stopped (or is gone). Wait for a
		// restart or the end of the run.
		now := time.Now()
		l.mu.Lock()
		l.since = fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond())
		l.mu.Unlock()
		select {
		case <-l.ctx.Done():
			return
		case <-l.wake:
		}
	}
}

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
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
}

// logTail returns the last lines of a service's log for error messages.
func (e *env) logTail(name string) string {
	path := e.logPath(name)
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	const maxBytes = 2000
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", path, strings.Join(lines, "\n"))
}
