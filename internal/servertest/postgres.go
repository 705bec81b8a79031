package servertest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// StartPostgres runs a fresh Postgres cluster (initdb in a private dir, a
// random password, 127.0.0.1 only) and returns a DSN for its postgres
// database once it accepts connections.
func StartPostgres(t *testing.T) string {
	t.Helper()
	bin := postgresBin(t)
	dir, cred := privateDir(t, "postgres")
	pass := secret(t)
	pwfile := filepath.Join(dir, "pwfile")
	require.NoError(t, os.WriteFile(pwfile, []byte(pass+"\n"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sock"), 0o700))
	chownTree(t, dir, cred)
	env := baseEnv("HOME=" + dir)
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--pwfile="+pwfile,
		"--auth=md5", "--auth-local=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Env, initdb.Dir = env, dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	out, err := initdb.CombinedOutput()
	require.NoError(t, err, "initdb:\n%s", out)

	port := FreePort(t)
	srv := start(t, cred, env, dir, filepath.Join(bin, "postgres"), "-D", data, "-h", "127.0.0.1",
		"-p", strconv.Itoa(port), "-k", filepath.Join(dir, "sock"), "-c", "fsync=off", "-c", "synchronous_commit=off")
	dsn := "postgres://postgres:" + pass + "@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"
	waitFor(t, "postgres", srv, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
	return dsn
}

// postgresBin is the newest /usr/lib/postgresql/<ver>/bin.
func postgresBin(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return filepath.Dir(lookPath(t, "initdb", "postgresql"))
}

// dialTCP reports whether 127.0.0.1:port accepts connections.
func dialTCP(ctx context.Context, port int) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return c.Close()
}
