// Package s3sink archives each greeting as a JSON object in S3 (LocalStack
// in compose), at service-<x>/YYYY/MM/DD/HH/<id>.json — the hour layout the
// seed's Firehose delivery used, so the archive can be listed by time.
package s3sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshproof/meshproof/mesh/sink"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// Config names the bucket and how to reach it.
type Config struct {
	Bucket    string
	Prefix    string // e.g. "service-h"
	Endpoint  string // empty: AWS's own endpoints
	Region    string
	AccessKey string
	SecretKey string
}

// Sink is one S3 client.
type Sink struct {
	client *s3.Client
	cfg    Config
	tracer trace.Tracer
}

// New builds the client. Path-style addressing: LocalStack and stand-ins
// serve buckets as path segments, not subdomains.
func New(cfg Config, tracer trace.Tracer) *Sink {
	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: true,
		// Checksums only when the API requires them: stand-ins do not all
		// understand aws-chunked trailing checksums.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	if cfg.AccessKey != "" {
		opts.Credentials = credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")
	}
	return &Sink{client: s3.New(opts), cfg: cfg, tracer: tracer}
}

// Name implements sink.Writer.
func (s *Sink) Name() string { return "s3" }

// Connect checks the bucket, creating it when it is missing.
func (s *Sink) Connect(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*types.NotFound](err); !ok {
		return fmt.Errorf("head bucket %s: %w", s.cfg.Bucket, err)
	}
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.cfg.Bucket)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", s.cfg.Bucket, err)
	}
	return nil
}

// Key is where a greeting is archived.
func (s *Sink) Key(g *greetingv3.Greeting) string {
	return s.cfg.Prefix + "/" + sink.Created(g).Format("2006/01/02/15") + "/" + g.GetId() + ".json"
}

// Write puts the object; the key is the greeting id, so a rewrite replaces
// it with the same bytes.
func (s *Sink) Write(ctx context.Context, g *greetingv3.Greeting) (bool, error) {
	key := s.Key(g)
	ctx, span := sink.StartSpan(ctx, s.tracer, "S3.PutObject",
		attribute.String("rpc.system", "aws-api"),
		attribute.String("rpc.service", "S3"),
		attribute.String("rpc.method", "PutObject"),
		attribute.String("aws.s3.bucket", s.cfg.Bucket),
		attribute.String("aws.s3.key", key))
	body, err := protojson.Marshal(g)
	if err == nil {
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:      aws.String(s.cfg.Bucket),
			Key:         aws.String(key),
			Body:        bytes.NewReader(body),
			ContentType: aws.String("application/json"),
			Metadata:    map[string]string{"trace-id": sink.TraceID(ctx)},
		})
	}
	if err != nil {
		err = fmt.Errorf("put s3://%s/%s: %w", s.cfg.Bucket, key, err)
	}
	sink.EndSpan(span, err)
	return err == nil, err
}

// Close is a no-op: the HTTP client holds no long-lived connection state.
func (s *Sink) Close(context.Context) error { return nil }
