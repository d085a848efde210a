package api

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
)

// TestUnsupportedAndPanics: what estiba does not serve answers 501 with a
// JSON message, a build prune finds nothing to prune, and a handler that
// panics answers 500 with a JSON message instead of dropping the
// connection.
func TestUnsupportedAndPanics(t *testing.T) {
	// No backends: any handler that reaches one panics on a nil interface.
	srv := New(nil, nil, nil, nil, nil, types.Version{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tc := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"POST", "/v1.47/swarm/init", 501, `{"message":"POST /swarm/init is not supported by estiba"}`},
		{"GET", "/v1.41/plugins", 501, `"message":"GET /plugins is not supported by estiba"`},
		{"POST", "/build", 501, `"message":"POST /build is not supported by estiba"`},
		{"POST", "/containers/x/checkpoints", 501, "not supported"},
		{"GET", "/session", 501, "not supported"},
		{"POST", "/v1.47/build/prune", 200, `"SpaceReclaimed":0`},
		{"GET", "/v9.99/version", 400, "client version 9.99 is too new"},
		{"GET", "/containers/json", 500, `"message":"internal error in GET /containers/json`},
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
		if rec.Code != tc.code || rec.Header().Get("Content-Type") != "application/json" || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %q %s, want %d %s", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body, tc.code, tc.want)
		}
	}
}
