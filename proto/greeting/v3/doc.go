// Package greetingv3 is the greeting mesh's API, greeting.v3 exactly as the
// seed article defines it: a GreetingService with one unary Greeting call,
// served over gRPC by every role and over HTTP (GET /api/greeting) by the
// gateway through grpc-gateway. The other files are generated from
// greeting.proto by `make proto` and committed; this one is not generated.
package greetingv3
