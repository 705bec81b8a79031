// Package grpcx resolves a unary gRPC method at run time, by server
// reflection or by compiling a .proto file, so the harness can call any
// service without compiled-in stubs. Resolution happens once per run; the
// request message is marshalled once and reused for every call.
package grpcx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Call names a unary method and the request to send to it.
type Call struct {
	// Method is "package.Service/Method" (a leading "/" and a "." before the
	// method name are accepted too).
	Method string
	// ProtoFile, when set, is compiled instead of asking the server.
	ProtoFile string
	// ImportPaths for ProtoFile and its imports. The standard imports
	// (google/protobuf/*.proto) are always available.
	ImportPaths []string
	// Data is the request as protojson; empty means the zero message.
	Data string
}

// Method is a resolved call, ready to be sent many times.
type Method struct {
	// FullMethod is the wire path, "/package.Service/Method".
	FullMethod string
	Desc       protoreflect.MethodDescriptor
	// Request is the request message built from Call.Data.
	Request *dynamicpb.Message
	// Payload is Request marshalled once, sent verbatim on every call.
	Payload []byte
}

// Resolve finds the method's descriptors (from ProtoFile, else by reflection
// over conn) and builds the request message.
func Resolve(ctx context.Context, conn grpc.ClientConnInterface, call Call) (*Method, error) {
	svc, name, err := SplitMethod(call.Method)
	if err != nil {
		return nil, err
	}
	var files *protoregistry.Files
	if call.ProtoFile != "" {
		files, err = CompileProto(ctx, call.ProtoFile, call.ImportPaths)
	} else {
		files, err = Reflect(ctx, conn, svc)
	}
	if err != nil {
		return nil, err
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", svc, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, fmt.Errorf("service %s has no method %s", svc, name)
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, fmt.Errorf("method %s/%s is streaming; only unary calls are supported", svc, name)
	}
	req := dynamicpb.NewMessage(md.Input())
	if strings.TrimSpace(call.Data) != "" {
		opts := protojson.UnmarshalOptions{Resolver: dynamicpb.NewTypes(files)}
		if err := opts.Unmarshal([]byte(call.Data), req); err != nil {
			return nil, fmt.Errorf("request data for %s: %w", md.FullName(), err)
		}
	}
	payload, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("marshal request for %s: %w", md.FullName(), err)
	}
	return &Method{FullMethod: "/" + svc + "/" + name, Desc: md, Request: req, Payload: payload}, nil
}

// SplitMethod splits "pkg.Service/Method" (or "/pkg.Service/Method" or
// "pkg.Service.Method") into the service's full name and the method name.
func SplitMethod(m string) (service, method string, err error) {
	s := strings.TrimPrefix(strings.TrimSpace(m), "/")
	i := strings.LastIndex(s, "/")
	if i < 0 {
		i = strings.LastIndex(s, ".")
	}
	if i <= 0 || i == len(s)-1 {
		return "", "", fmt.Errorf("grpc method %q: want package.Service/Method", m)
	}
	return s[:i], s[i+1:], nil
}

// CompileProto compiles file and its imports. The file is found as given
// (relative to the working directory) or relative to one of importPaths; its
// own directory is searched last so a lone file needs no import path.
func CompileProto(ctx context.Context, file string, importPaths []string) (*protoregistry.Files, error) {
	name, paths, err := locate(file, importPaths)
	if err != nil {
		return nil, err
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: paths}),
	}
	linked, err := c.Compile(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", file, err)
	}
	files := new(protoregistry.Files)
	for _, f := range linked {
		if err := registerWithDeps(files, f); err != nil {
			return nil, fmt.Errorf("compile %s: %w", file, err)
		}
	}
	return files, nil
}

// locate turns a file path into a name relative to an import path, which is
// what protocompile resolves, and the import paths to search.
func locate(file string, importPaths []string) (string, []string, error) {
	if _, err := os.Stat(file); err != nil {
		// Maybe it is already relative to an import path.
		for _, p := range importPaths {
			if _, err2 := os.Stat(filepath.Join(p, file)); err2 == nil {
				return filepath.ToSlash(file), importPaths, nil
			}
		}
		return "", nil, fmt.Errorf("proto file %s: %w", file, err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", nil, fmt.Errorf("proto file %s: %w", file, err)
	}
	for _, p := range importPaths {
		ap, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(ap, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel), importPaths, nil
		}
	}
	paths := append(append([]string(nil), importPaths...), filepath.Dir(abs))
	return filepath.Base(abs), paths, nil
}

// registerWithDeps registers f after its imports; a file already present is
// skipped, so shared imports are registered once.
func registerWithDeps(files *protoregistry.Files, f protoreflect.FileDescriptor) error {
	if _, err := files.FindFileByPath(f.Path()); err == nil {
		return nil
	}
	imps := f.Imports()
	for i := 0; i < imps.Len(); i++ {
		if err := registerWithDeps(files, imps.Get(i).FileDescriptor); err != nil {
			return err
		}
	}
	if err := files.RegisterFile(f); err != nil {
		return fmt.Errorf("register %s: %w", f.Path(), err)
	}
	return nil
}
