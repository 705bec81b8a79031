package grpcx

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	rpbalpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Reflect asks the server (grpc.reflection.v1, falling back to v1alpha for
// older servers) for the file defining service and every file it imports.
func Reflect(ctx context.Context, conn grpc.ClientConnInterface, service string) (*protoregistry.Files, error) {
	files, err := reflectWith(ctx, newV1(conn), service)
	if status.Code(err) == codes.Unimplemented {
		files, err = reflectWith(ctx, newV1alpha(conn), service)
	}
	if err != nil {
		return nil, fmt.Errorf("server reflection for %s: %w", service, err)
	}
	return files, nil
}

// fileSource is one reflection protocol version: ask by symbol or by file
// name, get serialized FileDescriptorProtos back.
type fileSource interface {
	open(ctx context.Context) error
	bySymbol(symbol string) ([][]byte, error)
	byName(name string) ([][]byte, error)
	close()
}

func reflectWith(ctx context.Context, src fileSource, service string) (*protoregistry.Files, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := src.open(ctx); err != nil {
		return nil, err
	}
	defer src.close()
	protos := map[string]*descriptorpb.FileDescriptorProto{}
	add := func(raw [][]byte) error {
		for _, b := range raw {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(b, fd); err != nil {
				return fmt.Errorf("decode file descriptor: %w", err)
			}
			protos[fd.GetName()] = fd
		}
		return nil
	}
	raw, err := src.bySymbol(service)
	if err != nil {
		return nil, err
	}
	if err := add(raw); err != nil {
		return nil, err
	}
	// Servers usually send the transitive imports along; fetch whatever is
	// still missing by name, except files this binary already knows (the
	// well-known types), which are taken from the global registry.
	for {
		missing := ""
		for _, fd := range protos {
			for _, dep := range fd.GetDependency() {
				if _, ok := protos[dep]; ok {
					continue
				}
				if _, err := protoregistry.GlobalFiles.FindFileByPath(dep); err == nil {
					continue
				}
				missing = dep
			}
		}
		if missing == "" {
			break
		}
		raw, err := src.byName(missing)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", missing, err)
		}
		before := len(protos)
		if err := add(raw); err != nil {
			return nil, err
		}
		if _, ok := protos[missing]; !ok || len(protos) == before {
			return nil, fmt.Errorf("server did not return file %s", missing)
		}
	}
	files := new(protoregistry.Files)
	for name := range protos {
		if err := build(files, protos, name); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// build links the named file after its imports. Imports neither sent by the
// server nor in files come from the global registry (well-known types).
func build(files *protoregistry.Files, protos map[string]*descriptorpb.FileDescriptorProto, name string) error {
	if _, err := files.FindFileByPath(name); err == nil {
		return nil
	}
	fdp, ok := protos[name]
	if !ok {
		gf, err := protoregistry.GlobalFiles.FindFileByPath(name)
		if err != nil {
			return fmt.Errorf("import %s: %w", name, err)
		}
		return registerWithDeps(files, gf)
	}
	for _, dep := range fdp.GetDependency() {
		if err := build(files, protos, dep); err != nil {
			return err
		}
	}
	fd, err := protodesc.NewFile(fdp, files)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := files.RegisterFile(fd); err != nil {
		return fmt.Errorf("register %s: %w", name, err)
	}
	return nil
}

// v1 speaks grpc.reflection.v1.
type v1 struct {
	client rpb.ServerReflectionClient
	stream grpc.BidiStreamingClient[rpb.ServerReflectionRequest, rpb.ServerReflectionResponse]
}

func newV1(conn grpc.ClientConnInterface) *v1 {
	return &v1{client: rpb.NewServerReflectionClient(conn)}
}

func (s *v1) open(ctx context.Context) (err error) {
	s.stream, err = s.client.ServerReflectionInfo(ctx)
	return err
}

func (s *v1) close() { _ = s.stream.CloseSend() }

func (s *v1) bySymbol(symbol string) ([][]byte, error) {
	return s.ask(&rpb.ServerReflectionRequest{
		MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}})
}

func (s *v1) byName(name string) ([][]byte, error) {
	return s.ask(&rpb.ServerReflectionRequest{
		MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: name}})
}

func (s *v1) ask(req *rpb.ServerReflectionRequest) ([][]byte, error) {
	if err := s.stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// A Send that fails with io.EOF means the server already ended the
	// stream (an Unimplemented v1 service does so at once); the status that
	// says why comes from Recv, and decides the v1alpha fallback.
	resp, err := s.stream.Recv()
	if err != nil {
		return nil, err
	}
	if e := resp.GetErrorResponse(); e != nil {
		return nil, status.Error(codes.Code(e.GetErrorCode()), e.GetErrorMessage())
	}
	return resp.GetFileDescriptorResponse().GetFileDescriptorProto(), nil
}

// v1alpha speaks grpc.reflection.v1alpha, for servers that predate v1.
type v1alpha struct {
	client rpbalpha.ServerReflectionClient
	stream grpc.BidiStreamingClient[rpbalpha.ServerReflectionRequest, rpbalpha.ServerReflectionResponse]
}

func newV1alpha(conn grpc.ClientConnInterface) *v1alpha {
	return &v1alpha{client: rpbalpha.NewServerReflectionClient(conn)}
}

func (s *v1alpha) open(ctx context.Context) (err error) {
	s.stream, err = s.client.ServerReflectionInfo(ctx)
	return err
}

func (s *v1alpha) close() { _ = s.stream.CloseSend() }

func (s *v1alpha) bySymbol(symbol string) ([][]byte, error) {
	return s.ask(&rpbalpha.ServerReflectionRequest{
		MessageRequest: &rpbalpha.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}})
}

func (s *v1alpha) byName(name string) ([][]byte, error) {
	return s.ask(&rpbalpha.ServerReflectionRequest{
		MessageRequest: &rpbalpha.ServerReflectionRequest_FileByFilename{FileByFilename: name}})
}

func (s *v1alpha) ask(req *rpbalpha.ServerReflectionRequest) ([][]byte, error) {
	if err := s.stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// A Send that fails with io.EOF means the server already ended the
	// stream (an Unimplemented v1 service does so at once); the status that
	// says why comes from Recv, and decides the v1alpha fallback.
	resp, err := s.stream.Recv()
	if err != nil {
		return nil, err
	}
	if e := resp.GetErrorResponse(); e != nil {
		return nil, status.Error(codes.Code(e.GetErrorCode()), e.GetErrorMessage())
	}
	return resp.GetFileDescriptorResponse().GetFileDescriptorProto(), nil
}

// Ensure both protocol versions satisfy fileSource.
var (
	_ fileSource = (*v1)(nil)
	_ fileSource = (*v1alpha)(nil)
)
