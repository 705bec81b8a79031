package environment

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "svc.log")
	var b strings.Builder
	for i := range 40 {
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))

	tail := LogTail(path)
	assert.Contains(t, tail, "line 39")
	assert.Contains(t, tail, "line 25")
	assert.NotContains(t, tail, "line 24\n", "only the last 15 lines")
	assert.Contains(t, tail, path, "names the file")

	assert.Empty(t, LogTail(filepath.Join(dir, "missing.log")))
	assert.Empty(t, LogTail(""))
}
