package data

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/internal/servertest"
)

func exec1(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err)
}

func TestPostgresAgainstRealServer(t *testing.T) {
	dsn := servertest.StartPostgres(t)
	exec1(t, dsn, "CREATE TABLE greeting_ledger (id text PRIMARY KEY, service text); INSERT INTO greeting_ledger VALUES ('1','a'),('2','a'),('3','a')")
	vars := expect.Vars{"load.ok": 3}
	ctx := context.Background()

	spec := scenario.DataAssertion{Postgres: "SELECT count(*) FROM greeting_ledger", Expect: "== load.ok", Within: scenario.Duration(5 * time.Second)}
	r := Collect(ctx, Endpoint{URL: dsn}, spec, within(spec))
	assert.True(t, r.Settled)
	assert.GreaterOrEqual(t, r.Reads, 3, "settling takes several reads over the quiet window")
	assert.GreaterOrEqual(t, r.Elapsed, Quiet)
	res := Judge(spec, r, vars)
	assert.Equal(t, verdict.Pass, res.Status, res.Detail)
	assert.Equal(t, "data", res.Kind)
	assert.Equal(t, "postgres SELECT count(*) FROM greeting_ledger expect == load.ok", res.Name)

	off := scenario.DataAssertion{Name: "ledger off by one", Postgres: spec.Postgres, Expect: "== load.ok + 1"}
	res = Judge(off, r, vars)
	assert.Equal(t, verdict.Fail, res.Status)
	assert.Regexp(t, `^3 \(\d+ reads, settled after [\d.]+[mµ]?s\)$`, res.Measured)
	assert.Contains(t, res.Detail, "want == load.ok + 1 (4)")

	bad := scenario.DataAssertion{Postgres: "SELECT count(*) FROM no_such_table", Expect: "== 0", Within: scenario.Duration(Quiet)}
	res = Judge(bad, Collect(ctx, Endpoint{URL: dsn}, bad, within(bad)), nil)
	assert.Equal(t, verdict.Error, res.Status)
	assert.Contains(t, res.Detail, "no_such_table")
}

// A late double write after a first read that already satisfied the
// expectation must be seen: the value is judged only once it settles.
func TestOvershootAfterAMatchingReadIsSeen(t *testing.T) {
	dsn := servertest.StartPostgres(t)
	exec1(t, dsn, "CREATE TABLE greeting_ledger (id text PRIMARY KEY); INSERT INTO greeting_ledger VALUES ('1'),('2'),('3')")
	lateErr := make(chan error, 1)
	go func() {
		time.Sleep(Quiet / 2) // the late duplicate writer under test, inside the quiet window
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, err = conn.Exec(ctx, "INSERT INTO greeting_ledger VALUES ('4'),('5')")
			_ = conn.Close(ctx)
		}
		lateErr <- err
	}()
	spec := scenario.DataAssertion{Postgres: "SELECT count(*) FROM greeting_ledger", Expect: "<= load.ok", Within: scenario.Duration(10 * time.Second)}
	r := Collect(context.Background(), Endpoint{URL: dsn}, spec, within(spec))
	require.NoError(t, <-lateErr)
	require.True(t, r.Settled)
	assert.Equal(t, []float64{3, 5}, r.Values)
	res := Judge(spec, r, expect.Vars{"load.ok": 3})
	assert.Equal(t, verdict.Fail, res.Status, "the first read (3) satisfied <= 3; the settled value (5) does not")
	assert.Contains(t, res.Detail, "settled at 5")
	assert.Contains(t, res.Detail, "3 → 5")
}

// A value still changing when within runs out fails, whatever it was.
func TestUnsettledReadingFails(t *testing.T) {
	spec := scenario.DataAssertion{Postgres: "SELECT 1", Expect: ">= 0"}
	r := Reading{Kind: "postgres", Target: "SELECT 1", Value: 7, Reads: 40, Values: []float64{1, 4, 7}}
	res := Judge(spec, r, nil)
	assert.Equal(t, verdict.Fail, res.Status)
	assert.Contains(t, res.Detail, "did not stay unchanged")
	assert.Contains(t, res.Detail, "1 → 4 → 7")
}

func TestUnreachableStoresReportTheirError(t *testing.T) {
	port := servertest.FreePort(t) // nothing listens here
	ctx := context.Background()
	for _, tc := range []struct {
		spec     scenario.DataAssertion
		endpoint string
	}{
		{scenario.DataAssertion{RabbitMQ: &scenario.QueueQuery{Queue: "service-d.greeting"}, Depth: "== 0"}, fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port)},
		{scenario.DataAssertion{Postgres: "SELECT 1", Expect: "== 1"}, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres sslmode=disable", port)},
		{scenario.DataAssertion{S3: &scenario.S3Query{Bucket: "greetings-raw", Prefix: "service-h/"}, Count: "== 1"}, fmt.Sprintf("http://test:test@127.0.0.1:%d", port)},
		{scenario.DataAssertion{Mongo: &scenario.MongoQuery{DB: "service-f", Collection: "messages"}, Count: "== 1"}, ""},
	} {
		r := Collect(ctx, Endpoint{URL: tc.endpoint}, tc.spec, time.Second)
		assert.Zero(t, r.Reads)
		assert.False(t, r.Settled)
		assert.NotEmpty(t, r.Error)
		res := Judge(tc.spec, r, nil)
		assert.Equal(t, verdict.Error, res.Status)
		assert.Contains(t, res.Detail, "never read")
	}
}

func TestJudgeFromSavedReading(t *testing.T) {
	spec := scenario.DataAssertion{S3: &scenario.S3Query{Bucket: "greetings-raw", Prefix: "service-h/"}, Count: "== load.ok", Within: scenario.Duration(15 * time.Second)}
	r := Reading{Kind: "s3", Target: "s3://greetings-raw/service-h/", Value: 99, Reads: 60, Elapsed: 15 * time.Second, Settled: true, SettledAfter: 3 * time.Second, Values: []float64{50, 99}}
	res := Judge(spec, r, expect.Vars{"load.ok": 100})
	assert.Equal(t, verdict.Fail, res.Status)
	assert.Equal(t, "99 (60 reads, settled after 3s)", res.Measured)
	assert.Equal(t, "s3 s3://greetings-raw/service-h/ settled at 99, want == load.ok (100); values seen: 50 → 99", res.Detail)
	assert.Equal(t, verdict.Pass, Judge(spec, r, expect.Vars{"load.ok": 99}).Status)

	two := scenario.DataAssertion{Postgres: "x", S3: spec.S3, Count: "== 1"}
	assert.Equal(t, verdict.Error, Judge(two, r, nil).Status)
	assert.Equal(t, "", Store(two))
}

func TestNumber(t *testing.T) {
	for _, v := range []any{int64(3), int32(3), float64(3), "3"} {
		n, err := number(v)
		require.NoError(t, err)
		assert.Equal(t, 3.0, n)
	}
	_, err := number(nil)
	assert.ErrorContains(t, err, "NULL")
}

// An attached environment already holds data: the run is judged on its own
// change since load start, and a double write still shows.
func TestBaselineMakesCountsTheRunsOwn(t *testing.T) {
	spec := scenario.DataAssertion{Mongo: &scenario.MongoQuery{DB: "service-f", Collection: "messages"}, Count: "== load.ok"}
	base := 100.0
	r := Reading{Kind: "mongo", Target: "service-f.messages", Value: 110, Reads: 9, Settled: true, Baseline: &base}
	res := Judge(spec, r, expect.Vars{"load.ok": 10})
	assert.Equal(t, verdict.Pass, res.Status, res.Detail)
	assert.Contains(t, res.Measured, "100 → 110 since load start")
	r.Value = 120
	assert.Equal(t, verdict.Fail, Judge(spec, r, expect.Vars{"load.ok": 10}).Status)
	assert.True(t, cumulative("postgres"))
	assert.False(t, cumulative("rabbitmq"), "a queue depth is a level, judged as it is")
}
