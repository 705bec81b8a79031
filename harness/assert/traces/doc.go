// Package traces judges the traces a run's requests left in Jaeger. The
// load injects a W3C traceparent per request whose parent span is never
// exported, so every trace id is known before the first span arrives and
// the span without a parent is the root.
//
// A scenario writes the expected trace as an indented service tree (Shape),
// with "~>" for an asynchronous edge through a broker. Fetch polls Jaeger's
// stable API until each trace is quiet — covering the shape early is not
// enough, since spans of an unexpected service may still arrive — and keeps
// Jaeger's answers verbatim, so Judge can run again on saved evidence.
// Judging tells a trace that does not match apart from one that never
// finished arriving, and both apart from no spans at all.
package traces
