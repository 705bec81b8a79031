package scenario

// scenarios/schema.json is generated from types.go by a separate command,
// so the shipped binaries link neither go/parser nor the schema library.
//go:generate go run ./cmd/genschema -types types.go -o ../../scenarios/schema.json
