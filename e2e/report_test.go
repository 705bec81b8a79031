package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/run"
)

// chromium finds the headless browser `make deps` installs (Debian's
// chromium package); the test cannot judge a page without one.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run `make deps`, which installs Debian's chromium")
	return ""
}

// headless runs chromium on a file with no network and returns stdout and
// the browser's log (console messages are logged there).
func headless(t *testing.T, browser string, args ...string) (stdout, log string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--enable-logging=stderr", "--v=0", "--user-data-dir=" + t.TempDir(),
		// Anything the page tried to fetch would fail here, and show as a
		// console error below.
		"--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "chromium: %s", errb.String())
	return out.String(), errb.String()
}

// TestReportHTML opens a real run's report.html in headless Chromium: the
// charts and the waterfall must be in the rendered DOM, the console
// clean, and a screenshot lands in the run's artifacts.
func TestReportHTML(t *testing.T) {
	browser := chromium(t)
	out := t.TempDir()
	if dir := os.Getenv("MESHPROOF_ARTIFACTS"); dir != "" {
		out = dir
	}
	rep, err := run.Run(t.Context(), run.Options{Scenario: "../scenarios/smoke.yaml", Backend: backends(t)[0],
		OutDir: out, Out: testWriter{t}})
	require.NoError(t, err)
	page := filepath.Join(rep.Dir, "report.html")
	require.FileExists(t, page)
	url := "file://" + page

	dom, log := headless(t, browser, "--dump-dom", url)
	for _, id := range []string{"verdict", "assertions", "latency-chart", "throughput-chart", "histogram-chart", "environment", "sample-trace", "artifacts"} {
		assert.Contains(t, dom, `id="`+id+`"`, "rendered page lacks #%s", id)
	}
	assert.Regexp(t, regexp.MustCompile(`<polyline class="p99" points="[0-9]`), dom, "the latency line has points")
	assert.Regexp(t, regexp.MustCompile(`<rect class="span ok"`), dom, "the waterfall has bars")
	assert.NotRegexp(t, regexp.MustCompile(`(?i)console.*(error|uncaught)|ERR_`), log, "console errors or failed loads:\n%s", log)

	shot := filepath.Join(rep.Dir, "report.png")
	headless(t, browser, "--screenshot="+shot, "--window-size=1280,2600", "--hide-scrollbars", url)
	st, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(10_000), "the screenshot is not blank")
	t.Logf("screenshot: %s", shot)
}
