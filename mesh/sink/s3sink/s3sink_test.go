package s3sink_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/meshproof/meshproof/internal/toolbin"
	"github.com/meshproof/meshproof/mesh/internal/standintest"
	"github.com/meshproof/meshproof/mesh/sink/s3sink"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// The sink against a real S3 server (the gofakes3 LocalStack stand-in).
func TestArchiveAgainstGofakes3(t *testing.T) {
	addr := standintest.Start(t, toolbin.LocalStackStandin, "-buckets", "greetings-raw")
	endpoint := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_localstack/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "stand-in health")

	cfg := s3sink.Config{Bucket: "greetings-raw", Prefix: "service-h", Endpoint: endpoint, Region: "us-east-1", AccessKey: "test", SecretKey: "test"}
	s := s3sink.New(cfg, noop.NewTracerProvider().Tracer(""))
	require.NoError(t, s.Connect(ctx))

	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	g := &greetingv3.Greeting{Id: "h-1", Service: "Service H", Message: "Hello, from Service H!", Created: created.Format(time.RFC3339Nano)}
	fresh, err := s.Write(ctx, g)
	require.NoError(t, err)
	assert.True(t, fresh)
	assert.Equal(t, "service-h/2026/03/04/05/h-1.json", s.Key(g))

	client := s3.New(s3.Options{Region: "us-east-1", UsePathStyle: true, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("greetings-raw"), Prefix: aws.String("service-h/")})
	require.NoError(t, err)
	require.Len(t, list.Contents, 1)
	assert.Regexp(t, regexp.MustCompile(`^service-h/\d{4}/\d{2}/\d{2}/\d{2}/h-1\.json$`), aws.ToString(list.Contents[0].Key))
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("greetings-raw"), Key: list.Contents[0].Key})
	require.NoError(t, err)
	body, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	require.NoError(t, err)
	var stored map[string]string
	require.NoError(t, json.Unmarshal(body, &stored), string(body))
	assert.Equal(t, "Hello, from Service H!", stored["message"])

	// A bucket that does not exist yet is created on Connect.
	other := s3sink.New(s3sink.Config{Bucket: "created-on-connect", Prefix: "service-h", Endpoint: endpoint, Region: "us-east-1", AccessKey: "test", SecretKey: "test"}, noop.NewTracerProvider().Tracer(""))
	require.NoError(t, other.Connect(ctx))
	_, err = client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("created-on-connect")})
	assert.NoError(t, err)
}
