package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/meshproof/meshproof/harness/scenario"
)

type mongoReader struct {
	client *mongo.Client
	q      scenario.MongoQuery
}

func openMongo(_ context.Context, uri string, q scenario.MongoQuery) (reader, error) {
	if uri == "" {
		return nil, fmt.Errorf("no MongoDB endpoint for %s.%s", q.DB, q.Collection)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(readTimeout).SetConnectTimeout(readTimeout))
	if err != nil {
		return nil, fmt.Errorf("connect mongo: %w", err)
	}
	return &mongoReader{client: c, q: q}, nil
}

func (m *mongoReader) read(ctx context.Context) (float64, error) {
	filter := bson.M{}
	for k, v := range m.q.Filter {
		filter[k] = v
	}
	n, err := m.client.Database(m.q.DB).Collection(m.q.Collection).CountDocuments(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("count %s.%s: %w", m.q.DB, m.q.Collection, err)
	}
	return float64(n), nil
}

func (m *mongoReader) close() {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	_ = m.client.Disconnect(ctx)
}

// rabbitReader reads the ready messages of a queue with a passive declare,
// which every RabbitMQ answers: the depth when the broker declares no
// management API.
type rabbitReader struct {
	conn  *amqp.Connection
	queue string
}

// openRabbit reads the queue's depth through the management API when the
// broker declares one (rabbitStats), else through AMQP (ready only).
func openRabbit(ep Endpoint, queue string) (reader, error) {
	if ep.URL == "" {
		return nil, fmt.Errorf("no RabbitMQ endpoint for queue %s", queue)
	}
	if ep.Management != "" {
		// Neither parse error is wrapped: both quote the URL, password
		// and all, into the report.
		u, err := amqp.ParseURI(ep.URL)
		if err != nil {
			return nil, errors.New("the rabbitmq endpoint is not an AMQP URL")
		}
		m, err := url.Parse(ep.Management)
		if err != nil {
			return nil, errors.New("the rabbitmq management endpoint is not a URL")
		}
		return &rabbitStats{url: queueStatsURL(m, u.Vhost, queue), queue: queue}, nil
	}
	conn, err := amqp.DialConfig(ep.URL, amqp.Config{Dial: amqp.DefaultDial(readTimeout), Heartbeat: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("connect rabbitmq: %w", err)
	}
	return &rabbitReader{conn: conn, queue: queue}, nil
}

func (r *rabbitReader) read(ctx context.Context) (float64, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		// A channel per read: a failed passive declare (no such queue)
		// closes the channel it ran on.
		ch, err := r.conn.Channel()
		if err != nil {
			done <- result{err: fmt.Errorf("rabbitmq channel: %w", err)}
			return
		}
		defer ch.Close()
		q, err := ch.QueueDeclarePassive(r.queue, false, false, false, false, nil)
		if err != nil {
			done <- result{err: fmt.Errorf("queue %s: %w", r.queue, err)}
			return
		}
		done <- result{n: q.Messages}
	}()
	select {
	case res := <-done:
		return float64(res.n), res.err
	case <-ctx.Done():
		// amqp091 calls take no context: closing the connection ends the read.
		_ = r.conn.Close()
		return 0, fmt.Errorf("queue %s: %w", r.queue, ctx.Err())
	}
}

func (r *rabbitReader) close() { _ = r.conn.Close() }

// rabbitStats reads a queue's depth from the management API: ready plus
// unacknowledged messages. A consumer that takes every message and never
// acks leaves no ready message behind, so ready alone would show a stuck
// queue as drained.
//
// The API serves the queue's last statistics event, not a live count. A
// busy classic queue emits one every collect_statistics_interval (5 s by
// default) and a last one, marked idle_since, when it goes idle and
// hibernates; only that one describes a queue at rest, so until idle_since
// shows a classic queue's reading is refused, not guessed. A queue woken
// again keeps showing its idle figures until its next event, one interval
// later: Collect's quiet window for these readings (StatsQuiet) outlasts
// it. This reader never touches the queue itself: a passive declare per
// read would keep the queue awake.
type rabbitStats struct {
	url   *url.URL
	queue string
}

func (r *rabbitStats) read(ctx context.Context) (float64, error) {
	var q struct {
		Type      string `json:"type"`
		Ready     *int   `json:"messages_ready"`
		Unacked   *int   `json:"messages_unacknowledged"`
		IdleSince string `json:"idle_since"`
	}
	if err := getJSON(ctx, r.url, &q); err != nil {
		return 0, fmt.Errorf("queue %s: %w", r.queue, err)
	}
	switch {
	case q.Ready == nil || q.Unacked == nil:
		return 0, fmt.Errorf("queue %s: the management API has no message counts for it yet", r.queue)
	case (q.Type == "" || q.Type == "classic") && q.IdleSince == "":
		return 0, fmt.Errorf("queue %s is still active (%d ready, %d unacknowledged when last reported): "+
			"the management API's counts are final only once the queue is idle", r.queue, *q.Ready, *q.Unacked)
	}
	return float64(*q.Ready + *q.Unacked), nil
}

func (r *rabbitStats) close() {}

// queueStatsURL is the management API's resource for one queue. The vhost
// is one path segment even when it is "/" (as %2F), which url.JoinPath
// would split.
func queueStatsURL(api *url.URL, vhost, queue string) *url.URL {
	u := *api
	u.RawQuery, u.Fragment = "", ""
	base := strings.TrimSuffix(api.EscapedPath(), "/")
	u.RawPath = base + "/api/queues/" + url.PathEscape(vhost) + "/" + url.PathEscape(queue)
	u.Path = strings.TrimSuffix(api.Path, "/") + "/api/queues/" + vhost + "/" + queue
	return &u
}

// getJSON GETs u, with the credentials it carries as basic auth, and
// decodes a 200 answer into v.
func getJSON(ctx context.Context, u *url.URL, v any) error {
	plain := *u
	plain.User = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, plain.String(), nil)
	if err != nil {
		return err
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pass)
	}
	resp, err := statsClient.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // lets the connection be reused
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("GET %s: %s: %s", plain.String(), resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", plain.String(), err)
	}
	return nil
}

// statsClient never goes through a proxy: stores are reached on the run's
// own addresses. Each read's context bounds it.
var statsClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

type pgReader struct {
	conn *pgx.Conn
	sql  string
}

func openPostgres(ctx context.Context, dsn, sql string) (reader, error) {
	if dsn == "" {
		return nil, fmt.Errorf("no Postgres endpoint for %q", sql)
	}
	cctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	return &pgReader{conn: conn, sql: sql}, nil
}

func (p *pgReader) read(ctx context.Context) (float64, error) {
	var v any
	if err := p.conn.QueryRow(ctx, p.sql).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres %q: %w", p.sql, err)
	}
	n, err := number(v)
	if err != nil {
		return 0, fmt.Errorf("postgres %q: %w", p.sql, err)
	}
	return n, nil
}

func (p *pgReader) close() {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	_ = p.conn.Close(ctx)
}

// number turns the scalar a query returned into a float64.
func number(v any) (float64, error) {
	switch x := v.(type) {
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int16:
		return float64(x), nil
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		return strconv.ParseFloat(x, 64)
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return 0, fmt.Errorf("numeric %v is not a number", x)
		}
		return f.Float64, nil
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, nil
	case nil:
		return 0, fmt.Errorf("the query returned NULL")
	}
	return 0, fmt.Errorf("the query returned %T, want a number", v)
}

type s3Reader struct {
	client *s3.Client
	q      scenario.S3Query
}

// openS3 reads credentials from the endpoint's userinfo
// (http://KEY:SECRET@host:port): the environment owns them, not this code.
func openS3(endpoint string, q scenario.S3Query) (reader, error) {
	if endpoint == "" {
		return nil, fmt.Errorf("no S3 endpoint for bucket %s", q.Bucket)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint: %w", err)
	}
	key, secret := "", ""
	if u.User != nil {
		key = u.User.Username()
		secret, _ = u.User.Password()
		u.User = nil
	}
	// Static options, not config.LoadDefaultConfig: the run must not pick up
	// the host's AWS profile or region.
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(u.String()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
	})
	return &s3Reader{client: c, q: q}, nil
}

func (s *s3Reader) read(ctx context.Context) (float64, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.q.Bucket)}
	if s.q.Prefix != "" {
		in.Prefix = aws.String(s.q.Prefix)
	}
	n := 0
	for p := s3.NewListObjectsV2Paginator(s.client, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("list s3://%s/%s: %w", s.q.Bucket, s.q.Prefix, err)
		}
		n += len(page.Contents)
	}
	return float64(n), nil
}

func (s *s3Reader) close() {}
