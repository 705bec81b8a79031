package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrintRunningShowsHowToAttach(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	printRunning(&buf, []runningEnv{
		{runID: "up-2", backend: "docker", services: 3, started: at.Add(time.Minute)},
		{runID: "up-1", backend: "local", services: 9, started: at, note: "still starting"},
	})
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^RUN ID\s+BACKEND\s+SERVICES\s+STARTED\s+ATTACH$`, lines[0])
	assert.Regexp(t, `^up-1\s+local\s+9\s+2026-01-02 03:04:05\s+meshproof run SCENARIO --attach up-1  \(still starting\)$`, lines[1])
	assert.Regexp(t, `^up-2\s+docker\s+3\s+2026-01-02 03:05:05\s+meshproof run SCENARIO --attach up-2$`, lines[2])
}

func TestListRunningRefusesADirectory(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 2, Main(t.Context(), []string{"list", "--running", "scenarios"}, &out, &errb))
	assert.Contains(t, errb.String(), "meshproof list --running")
}
