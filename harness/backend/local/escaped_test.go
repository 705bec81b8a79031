package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A daemon that left its group (its own session) but inherited the run's
// environment is still found and killed.
func TestKillEscapedFindsDaemonsByRunDir(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	escaped := exec.Command("sleep", "60")
	escaped.Env = append(os.Environ(), "RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"))
	escaped.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	require.NoError(t, escaped.Start())
	bystander := exec.Command("sleep", "60")
	bystander.Env = append(os.Environ(), "DATA="+filepath.Join(other, "x"))
	require.NoError(t, bystander.Start())
	t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })

	killed := killEscaped(dir)
	assert.Contains(t, killed, escaped.Process.Pid)
	assert.NotContains(t, killed, bystander.Process.Pid, "a process of another run is left alone")
	err := escaped.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal())
}
