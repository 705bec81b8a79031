package data

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/internal/servertest"
)

// A consumer that takes every message and never acks leaves no ready
// message: counted by a passive declare alone, the queue looks drained.
// Depth must count what was delivered but not acknowledged.
func TestQueueDepthCountsUnacknowledgedMessages(t *testing.T) {
	broker := servertest.StartRabbitMQ(t, servertest.WithManagement(), servertest.WithConsumerTimeout(time.Hour))
	conn, err := amqp.Dial(broker.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	const queue = "service-d.greeting"
	_, err = ch.QueueDeclare(queue, true, false, false, false, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for range 5 {
		require.NoError(t, ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{Body: []byte("hello")}))
	}
	// The stuck consumer: all 5 delivered, none acknowledged.
	held, err := ch.Consume(queue, "stuck", false, false, false, false, nil)
	require.NoError(t, err)
	for range 5 {
		select {
		case <-held:
		case <-ctx.Done():
			require.FailNow(t, "the consumer got fewer than 5 deliveries")
		}
	}

	drained := queueSpec(queue, "== 0")
	withMgmt := Collect(ctx, Endpoint{URL: broker.URL, Management: broker.Management}, drained, 20*time.Second)
	require.True(t, withMgmt.Settled, "reading: %+v", withMgmt)
	assert.Equal(t, 5.0, withMgmt.Value, "ready 0 + unacknowledged 5")
	assert.Equal(t, "ready + unacknowledged messages", withMgmt.Counted)
	res := Judge(drained, withMgmt, nil)
	assert.Equal(t, verdict.Fail, res.Status)
	assert.Contains(t, res.Detail, "settled at 5, want == 0")

	readyOnly := Collect(ctx, Endpoint{URL: broker.URL}, drained, 20*time.Second)
	require.True(t, readyOnly.Settled, "reading: %+v", readyOnly)
	assert.Equal(t, 0.0, readyOnly.Value)
	res = Judge(drained, readyOnly, nil)
	assert.Equal(t, verdict.Pass, res.Status, "what a broker without a management API can tell")
	assert.Contains(t, res.Detail, "ready messages only", "the verdict says what it could not see")

	// Closing the consumer's channel requeues its 5 deliveries as ready:
	// the depth stays 5, counted the other way round.
	require.NoError(t, ch.Close())
	requeued := Collect(ctx, Endpoint{URL: broker.URL, Management: broker.Management}, queueSpec(queue, "== 5"), 20*time.Second)
	assert.Equal(t, verdict.Pass, Judge(queueSpec(queue, "== 5"), requeued, nil).Status, "reading: %+v", requeued)
	assert.Equal(t, StatsQuiet, requeued.Quiet, "management figures must outlast a statistics interval")
}

func TestQueueStatsURLKeepsTheVhostOneSegment(t *testing.T) {
	api, err := url.Parse("http://guest:guest@127.0.0.1:15672")
	require.NoError(t, err)
	assert.Equal(t, "http://guest:guest@127.0.0.1:15672/api/queues/%2F/service-d.greeting", queueStatsURL(api, "/", "service-d.greeting").String())
	api, err = url.Parse("http://127.0.0.1:8080/rabbit/")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8080/rabbit/api/queues/prod/a%20b", queueStatsURL(api, "prod", "a b").String())
}

func queueSpec(queue, depth string) scenario.DataAssertion {
	return scenario.DataAssertion{RabbitMQ: &scenario.QueueQuery{Queue: queue}, Depth: depth}
}

// The management API serves a classic queue's last statistics event; only
// the one it emits on going idle is final, so a busy queue's figures are
// refused rather than judged.
func TestQueueStatsAreFinalOnlyWhenIdle(t *testing.T) {
	for _, tc := range []struct {
		body, err string
		want      float64
	}{
		{body: `{"type":"classic","messages_ready":2,"messages_unacknowledged":3}`, err: "still active (2 ready, 3 unacknowledged"},
		{body: `{"type":"classic","messages_ready":2,"messages_unacknowledged":3,"idle_since":"2026-12-06T06:00:00"}`, want: 5},
		{body: `{"type":"quorum","messages_ready":0,"messages_unacknowledged":4}`, want: 4},
		{body: `{"type":"classic"}`, err: "no message counts for it yet"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			if !ok || user != "guest" || pass != "secret" || r.URL.EscapedPath() != "/api/queues/%2F/q" {
				http.Error(w, "no", http.StatusNotFound)
				return
			}
			_, _ = w.Write([]byte(tc.body))
		}))
		t.Cleanup(srv.Close)
		api, err := url.Parse(srv.URL)
		require.NoError(t, err)
		api.User = url.UserPassword("guest", "secret")
		rd, err := openRabbit(Endpoint{URL: "amqp://guest:secret@127.0.0.1:1/", Management: api.String()}, "q")
		require.NoError(t, err)
		v, err := rd.read(context.Background())
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err)
		} else if assert.NoError(t, err) {
			assert.Equal(t, tc.want, v)
		}
	}
}
