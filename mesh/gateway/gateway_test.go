package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshproof/meshproof/mesh/telemetry"
)

// A failure of the gateway's own upstream (service-a) must name it in the
// log line as every other failing service is named, so a scenario's log
// rule on failing_service sees every blame the gateway hands out.
func TestUpstreamFailureNamesTheService(t *testing.T) {
	var logs bytes.Buffer
	log := telemetry.NewLogger(&logs, "gateway", slog.LevelInfo)
	h := errorHandler(log, "service-a")
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api/greeting", nil)
	h(context.Background(), nil, nil, w, r, status.Error(codes.Unavailable, "connection refused"))

	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	var body ErrorBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	assert.Equal(t, "service-a", body.Service)
	assert.Contains(t, logs.String(), `"failing_service":"service-a"`)
	assert.Contains(t, logs.String(), `"level":"ERROR"`, "the failure started at the gateway's hop")
}
