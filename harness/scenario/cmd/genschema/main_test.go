package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchemaUpToDate fails when types.go changed without regenerating
// scenarios/schema.json: run `go generate ./harness/scenario`.
func TestSchemaUpToDate(t *testing.T) {
	want, err := Schema(typesSource(t))
	require.NoError(t, err)
	got, err := os.ReadFile("../../../../scenarios/schema.json")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "scenarios/schema.json is stale: run go generate ./harness/scenario")
}

func TestSchemaShape(t *testing.T) {
	b, err := Schema(typesSource(t))
	require.NoError(t, err)
	var s struct {
		Defs map[string]struct {
			Properties           map[string]map[string]any `json:"properties"`
			Required             []string                  `json:"required"`
			AdditionalProperties *bool                     `json:"additionalProperties"`
			Type                 string                    `json:"type"`
			Pattern              string                    `json:"pattern"`
			Description          string                    `json:"description"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(b, &s))
	sc := s.Defs["Scenario"]
	assert.ElementsMatch(t, []string{"name", "environment"}, sc.Required)
	require.NotNil(t, sc.AdditionalProperties)
	assert.False(t, *sc.AdditionalProperties, "unknown fields are flagged by editors too")
	assert.Equal(t, "string", s.Defs["Duration"].Type)
	assert.NotEmpty(t, s.Defs["Duration"].Pattern)
	assert.Equal(t, []any{"closed", "open"}, s.Defs["LoadSpec"].Properties["model"]["enum"])
	assert.Contains(t, s.Defs["LoadSpec"].Properties["think_time"]["description"], "pause between requests")
}

func typesSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../types.go")
	require.NoError(t, err)
	return string(b)
}
