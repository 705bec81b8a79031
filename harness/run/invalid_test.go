package run

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minInvalid is the least the corpus holds, so that losing files to a bad
// glob or a move is noticed.
const minInvalid = 25

// TestInvalidScenarios runs the full validation `meshproof validate` runs
// on every file in testdata/invalid. Each file says on its first line what
// it must be rejected with — "# want: LINE:COL: field: message" — and the
// error must name the file at that line and column: everything a run would
// reject is caught before a service starts.
func TestInvalidScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), minInvalid)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			want := wantedError(t, file)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := Prepare(ctx, file, nil)
			var input *InputError
			require.True(t, errors.As(err, &input), "want an *InputError, got %T: %v", err, err)
			assert.Contains(t, err.Error(), file+":"+want)
		})
	}
}

// wantedError reads the "# want: " comment on a corpus file's first line.
func wantedError(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	first, _ := bufio.NewReader(f).ReadString('\n')
	want, ok := strings.CutPrefix(strings.TrimSpace(first), "# want: ")
	require.True(t, ok, "%s: the first line must be \"# want: LINE:COL: field: message\"", file)
	return want
}
