// Package servertest runs real RabbitMQ and Postgres servers (Debian's
// rabbitmq-server and postgresql, installed by `make deps`) as private
// child processes for the sink tests, the way the local backend does: own
// ports on 127.0.0.1, own data dirs, the service's system user when the
// tests run as root. mesh/ must not import harness/, so the recipe is
// repeated here in its test-sized form.
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readyTimeout bounds a server's start on a busy 2-core machine (RabbitMQ
// alone takes ~6 s when idle).
const readyTimeout = 90 * time.Second

// server is one started process group.
type server struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs path as cred (nil: as we are) in its own process group with
// output in the test log; the group is ended when the test ends.
func start(t *testing.T, cred *syscall.Credential, env []string, dir, path string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start(), "start %s", path)
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	return s
}

// stop ends the whole group (Erlang's helper programs included): SIGTERM,
// then SIGKILL after 10 s.
func (s *server) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.done
}

// privateDir makes a dir the service's user owns and nobody else can
// enter, under a parent that user can traverse (t.TempDir's is 0700 root).
func privateDir(t *testing.T, owner string) (string, *syscall.Credential) {
	t.Helper()
	parent, err := os.MkdirTemp("", "meshproof-servertest-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(parent) })
	require.NoError(t, os.Chmod(parent, 0o711))
	dir := filepath.Join(parent, owner)
	require.NoError(t, os.Mkdir(dir, 0o700))
	if os.Geteuid() != 0 {
		return dir, nil
	}
	u, err := user.Lookup(owner)
	require.NoError(t, err, "user %s (is its Debian package installed? make deps)", owner)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	require.NoError(t, os.Chown(dir, uid, gid))
	return dir, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
}

// chownTree hands what we wrote into dir to cred's user.
func chownTree(t *testing.T, dir string, cred *syscall.Credential) {
	t.Helper()
	if cred == nil {
		return
	}
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	}))
}

// FreePort picks a free loopback port.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// secret is 16 random bytes, hex (a password or cookie for one test).
func secret(t *testing.T) string {
	t.Helper()
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// waitFor polls ready until it succeeds, the server exits or the deadline.
func waitFor(t *testing.T, what string, s *server, ready func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(actx)
		acancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			require.FailNow(t, what+" exited before it was ready", "%v", err)
		case <-ctx.Done():
			require.FailNow(t, what+" not ready", "within %s: %v", readyTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func baseEnv(extra ...string) []string {
	var out []string
	for _, k := range []string{"PATH", "LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return append(out, extra...)
}

// testWriter sends a child's output to the test log (shown on failure / -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// lookPath finds a program or names the Debian package that has it.
func lookPath(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	require.NoError(t, err, "%s not found: install the Debian package %s (make deps)", prog, pkg)
	return p
}

func mustStat(t *testing.T, path, pkg string) string {
	t.Helper()
	_, err := os.Stat(path)
	require.NoError(t, err, fmt.Sprintf("%s not found: install the Debian package %s (make deps)", path, pkg))
	return path
}
