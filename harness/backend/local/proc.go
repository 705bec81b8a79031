package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// launch says how to start one process.
type launch struct {
	path string
	args []string
	env  []string
	dir  string
	// cred runs the process as another user (postgres and rabbitmq refuse
	// or misbehave as root); nil keeps the harness's user.
	cred *syscall.Credential
	// listens, when set, is the address a helper serves; the next process
	// starts only once it accepts connections (e.g. epmd before the node
	// that registers with it).
	listens string
}

// proc is a started process and its process group.
type proc struct {
	pid   int
	start uint64 // start time in clock ticks since boot, to tell pid reuse apart
	done  chan struct{}
	err   error // Wait's result, set before done closes
}

// spawn starts l in a new process group (pgid = pid) with output appended
// to logFile. Unless detached, the child gets SIGKILL when the harness dies
// (Pdeathsig); grandchildren are covered by the group kill and by GC.
func spawn(l launch, logFile *os.File, detached bool) (*proc, error) {
	cmd := exec.Command(l.path, l.args...)
	cmd.Env = l.env
	cmd.Dir = l.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: l.cred}
	if !detached {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", l.path, err)
	}
	p := &proc{pid: cmd.Process.Pid, done: make(chan struct{})}
	p.start, _ = procStart(p.pid)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// groupAlive reports whether any process is left in the group.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// killGroup sends SIGTERM to the group, waits up to grace for it to empty,
// then sends SIGKILL and waits for the kernel to remove it.
func killGroup(ctx context.Context, pgid int, grace time.Duration) error {
	if pgid <= 1 {
		return fmt.Errorf("refusing to signal process group %d", pgid)
	}
	if !groupAlive(pgid) {
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGCONT) // a paused group cannot act on SIGTERM
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	if waitGroupGone(ctx, pgid, grace) {
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if waitGroupGone(ctx, pgid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("process group %d survived SIGKILL", pgid)
}

func waitGroupGone(ctx context.Context, pgid int, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for groupAlive(pgid) {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

// statFields returns the fields of /proc/<pid>/stat after the command name
// (field 3, state, is index 0), since the name may contain spaces.
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strings.Fields(s[i+1:]), nil
}

// procStart is field 22 of /proc/<pid>/stat: start time since boot.
func procStart(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// sameProcess reports whether pid is still the process that started at
// start (pids are reused).
func sameProcess(pid int, start uint64) bool {
	got, err := procStart(pid)
	return err == nil && got == start
}

// clockTicks is USER_HZ, fixed at 100 on Linux for /proc.
const clockTicks = 100

// groupUsage is the summed peak RSS (VmHWM) and CPU time of the members of
// each of the given process groups, from one scan of /proc. CPU includes
// reaped children (cutime/cstime), so exited workers still count.
func groupUsage(pgids map[int]bool) map[int][2]float64 {
	out := map[int][2]float64{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		f, err := statFields(pid)
		if err != nil || len(f) < 15 {
			continue
		}
		pgid, _ := strconv.Atoi(f[2])
		if !pgids[pgid] {
			continue
		}
		var ticks float64
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseFloat(f[i], 64)
			ticks += v
		}
		u := out[pgid]
		u[0] += float64(peakRSS(pid))
		u[1] += ticks / clockTicks
		out[pgid] = u
	}
	return out
}

// peakRSS reads VmHWM from /proc/<pid>/status, in bytes.
func peakRSS(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// killEscaped kills processes that left their service's process group
// (a daemon that double-forked, such as an "epmd -daemon" an Erlang VM
// starts for itself) but still carry the run in their environment: every
// service of a run gets paths under its run dir, and a daemon inherits them.
// Group kills cannot reach such a process; this scan of /proc can.
func killEscaped(runDir string) []int {
	if runDir == "" {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	needle := []byte(runDir + string(os.PathSeparator))
	self := os.Getpid()
	var killed []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, needle) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}
