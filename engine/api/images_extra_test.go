package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

func TestDecodeRegistryAuth(t *testing.T) {
	js := `{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}`
	for _, tc := range []struct {
		name, header string
		ok           bool
	}{
		{"url padded", base64.URLEncoding.EncodeToString([]byte(js)), true},
		{"url raw", base64.RawURLEncoding.EncodeToString([]byte(js)), true},
		{"std", base64.StdEncoding.EncodeToString([]byte(js)), true},
		{"not base64", "%%%", false},
		{"not json", base64.URLEncoding.EncodeToString([]byte("nope")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := DecodeRegistryAuth(tc.header)
			if !tc.ok {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("err %v, want invalid", err)
				}
				return
			}
			if err != nil || a.Username != "u" || a.Password != "p?>" || a.ServerAddress != "127.0.0.1:5000" {
				t.Fatalf("%+v %v", a, err)
			}
		})
	}
}

func TestDanglingFilter(t *testing.T) {
	for _, tc := range []struct {
		f       map[string][]string
		all     bool
		errWant error
	}{
		{nil, false, nil},
		{map[string][]string{"dangling": {"true"}}, false, nil},
		{map[string][]string{"dangling": {"false"}}, true, nil},
		{map[string][]string{"dangling": {"maybe"}}, false, errdefs.ErrInvalid},
		{map[string][]string{"until": {"24h"}}, false, errdefs.ErrNotImplemented},
	} {
		all, err := danglingFilter(tc.f)
		if all != tc.all || !errors.Is(err, tc.errWant) || (tc.errWant == nil) != (err == nil) {
			t.Errorf("%v: all=%v err=%v", tc.f, all, err)
		}
	}
}

// fakePullImages answers pulls with a canned progress line and error.
type fakePullImages struct {
	Images
	progress string
	err      error
}

func (f fakePullImages) Pull(_ context.Context, _ string, w io.Writer) error {
	if f.progress != "" {
		io.WriteString(w, f.progress+"\n")
	}
	return f.err
}

type fakeLogin struct {
	ImagesExtra
	err error
}

func (f fakeLogin) Login(context.Context, types.AuthConfig) (*types.AuthResponse, error) {
	return nil, f.err
}

// TestRegistryErrorStatus: a pull that fails before any progress, and a
// refused login, answer with the error's own status, as Docker's daemon; a
// pull failing midway reports in the stream.
func TestRegistryErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		path     string
		images   Images
		code     int
		want     string
		wantType string
	}{
		{"pull: unknown manifest", "/v1.41/images/create?fromImage=x&tag=1",
			fakePullImages{err: fmt.Errorf("manifest for x:1 not found: manifest unknown: %w", errdefs.ErrNotFound)},
			404, `{"message":"manifest for x:1 not found: manifest unknown"}`, "application/json"},
		{"pull: failure midway", "/images/create?fromImage=x",
			fakePullImages{progress: `{"status":"Pulling from x"}`, err: errors.New("connection reset")},
			200, `"errorDetail":{"message":"connection reset"}`, "application/json"},
		{"login: refused", "/auth",
			struct {
				Images
				ImagesExtra
			}{ImagesExtra: fakeLogin{err: fmt.Errorf("login attempt to http://r/v2/ failed with status: 401 Unauthorized: %w", errdefs.ErrUnauthorized)}},
			401, `{"message":"login attempt to http://r/v2/ failed with status: 401 Unauthorized"}`, "application/json"},
		{"login: forbidden", "/auth",
			struct {
				Images
				ImagesExtra
			}{ImagesExtra: fakeLogin{err: fmt.Errorf("denied: %w", errdefs.ErrForbidden)}},
			403, `{"message":"denied"}`, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := New(nil, nil, tc.images, nil, nil, types.Version{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest("POST", tc.path, strings.NewReader(`{"username":"u","password":"p"}`)))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) || rec.Header().Get("Content-Type") != tc.wantType {
				t.Errorf("%d %q %q; want %d with %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tc.code, tc.want)
			}
		})
	}
}
