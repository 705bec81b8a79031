package local

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestMain doubles as the "process" service of the tests: with
// LOCAL_TEST_APP set, the test binary serves its env and args over HTTP
// instead of running tests, so no separate program has to be built.
func TestMain(m *testing.M) {
	switch os.Getenv("LOCAL_TEST_APP") {
	case "serve":
		serveApp()
		return
	case "exit":
		fmt.Println("exiting at once")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func serveApp() {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "# TYPE app_requests_total counter\napp_requests_total 7")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"env": env, "args": os.Args[1:]})
	})
	fmt.Println("app listening on", os.Getenv("LISTEN"))
	if err := http.ListenAndServe(os.Getenv("LISTEN"), mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
