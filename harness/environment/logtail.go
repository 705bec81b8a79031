package environment

import (
	"fmt"
	"os"
	"strings"
)

// LogTail returns the last lines of a service's log file, formatted to end an
// error message: a service that dies while starting is diagnosed from the
// message alone, even when the run's directory is gone (a CI temp dir).
// It returns "" when the file is missing or empty.
func LogTail(path string) string {
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	const maxBytes, maxLines = 2000, 15
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", path, strings.Join(lines, "\n"))
}
