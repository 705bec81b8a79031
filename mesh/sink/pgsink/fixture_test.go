package pgsink

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ledger table is written twice on purpose: Schema, which service-f
// runs on start, and the fixture the Postgres service loads, so the table
// exists before the first greeting even when service-f is not started.
// This keeps them one fact.
func TestFixtureMatchesSchema(t *testing.T) {
	b, err := os.ReadFile("../../../fixtures/postgres/001_greeting_ledger.sql")
	require.NoError(t, err)
	var stmt []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			stmt = append(stmt, line)
		}
	}
	fixture := strings.TrimSuffix(strings.TrimSpace(strings.Join(stmt, "\n")), ";")
	assert.Equal(t, strings.Join(strings.Fields(Schema), " "), strings.Join(strings.Fields(fixture), " "),
		"fixtures/postgres/001_greeting_ledger.sql and pgsink.Schema differ")
}
