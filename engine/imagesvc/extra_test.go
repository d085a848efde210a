package imagesvc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/image/registry"
)

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"": "docker.io", "https://index.docker.io/v1/": "docker.io", "registry-1.docker.io": "docker.io",
		"127.0.0.1:5000": "127.0.0.1:5000", "http://localhost:5000/v2/": "localhost:5000",
	} {
		if got := RegistryHost(in); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProgressBar(t *testing.T) {
	for _, tc := range []struct {
		cur, total int64
		eq         int
		tail       string
	}{
		{0, 100, 0, "0B/100B"},
		{50, 100, 25, "50B/100B"},
		{2_500_000, 2_500_000, 50, "2.5MB/2.5MB"},
		{200, 100, 50, "200B/100B"},
	} {
		got := ProgressBar(tc.cur, tc.total)
		if n := strings.Count(got, "="); n != tc.eq || !strings.HasSuffix(got, tc.tail) || !strings.HasPrefix(got, "[") {
			t.Errorf("ProgressBar(%d, %d) = %q", tc.cur, tc.total, got)
		}
	}
}

func TestThrottle(t *testing.T) {
	th := newThrottle(time.Hour)
	if !th.due("a") || th.due("a") || !th.due("b") {
		t.Error("throttle: first tick per key passes, the next within the period does not")
	}
}

// TestRegistryErrors: registry answers become Docker's classes and words.
func TestRegistryErrors(t *testing.T) {
	regErr := func(method, url string, status int, code, msg string) error {
		e := &registry.Error{Method: method, URL: url, Status: status}
		if code != "" {
			e.Errors = []registry.ErrorDetail{{Code: code, Message: msg}}
		}
		return fmt.Errorf("pull x: %w", e)
	}
	const ref = "localhost:5000/app:1"
	pulls := []struct {
		name  string
		err   error
		class error
		msg   string
	}{
		{"manifest unknown", regErr("GET", "http://localhost:5000/v2/app/manifests/1", 404, "MANIFEST_UNKNOWN", "manifest unknown"),
			errdefs.ErrNotFound, "manifest for localhost:5000/app:1 not found: manifest unknown: manifest unknown"},
		{"name unknown", regErr("GET", "u", 404, "NAME_UNKNOWN", "repository name not known to registry"),
			errdefs.ErrNotFound, "repository localhost:5000/app not found: name unknown: repository name not known to registry"},
		{"denied", regErr("GET", "u", 403, "DENIED", "requested access to the resource is denied"),
			errdefs.ErrNotFound, "pull access denied for localhost:5000/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"},
		{"HEAD manifest 404", regErr("HEAD", "http://localhost:5000/v2/app/manifests/1", 404, "", ""),
			errdefs.ErrNotFound, "manifest for localhost:5000/app:1 not found: manifest unknown: manifest unknown"},
		{"blob 404", regErr("GET", "http://localhost:5000/v2/app/blobs/sha256:00", 404, "", ""), errdefs.ErrNotFound, "404 Not Found"},
		{"unauthorized stays unclassified", regErr("GET", "u", 401, "UNAUTHORIZED", "authentication required"), nil, "authentication required"},
		{"not a registry answer", errors.New("dial tcp: refused"), nil, "refused"},
	}
	for _, tc := range pulls {
		t.Run("pull "+tc.name, func(t *testing.T) {
			got := pullError(tc.err, ref)
			if tc.class != nil && !errors.Is(got, tc.class) || tc.class == nil && classOf(got) != nil {
				t.Errorf("class of %v: want %v", got, tc.class)
			}
			if re := new(registry.Error); errors.As(tc.err, &re) && !errors.As(got, &re) {
				t.Errorf("%v: the registry's answer is no longer wrapped", got)
			}
			if !strings.Contains(got.Error(), tc.msg) {
				t.Errorf("message %q, want %q", got, tc.msg)
			}
		})
	}
	logins := []struct {
		name  string
		err   error
		class error
		msg   string
	}{
		{"basic", regErr("GET", "http://localhost:5000/v2/", 401, "UNAUTHORIZED", "authentication required"),
			errdefs.ErrUnauthorized, "login attempt to http://localhost:5000/v2/ failed with status: 401 Unauthorized"},
		{"token", regErr("GET", "https://auth.example/token", 401, "UNAUTHORIZED", "incorrect username or password"),
			errdefs.ErrUnauthorized, `Get "https://auth.example/token": unauthorized: incorrect username or password`},
		{"token without a body", regErr("GET", "https://auth.example/token", 401, "", ""),
			errdefs.ErrUnauthorized, `Get "https://auth.example/token": unauthorized: 401 Unauthorized`},
		{"denied", regErr("GET", "https://auth.example/token", 403, "", ""),
			errdefs.ErrForbidden, `Get "https://auth.example/token": denied`},
		{"unreachable", errors.New("dial tcp: refused"), nil, "login to localhost:5000: dial tcp: refused"},
	}
	for _, tc := range logins {
		t.Run("login "+tc.name, func(t *testing.T) {
			got := loginError(tc.err, "localhost:5000")
			if tc.class != nil && !errors.Is(got, tc.class) || tc.class == nil && classOf(got) != nil {
				t.Errorf("class of %v: want %v", got, tc.class)
			}
			if re := new(registry.Error); errors.As(tc.err, &re) && !errors.As(got, &re) {
				t.Errorf("%v: the registry's answer is no longer wrapped", got)
			}
			if !strings.Contains(got.Error(), tc.msg) {
				t.Errorf("message %q, want %q", got, tc.msg)
			}
		})
	}
}

func classOf(err error) error {
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalid, errdefs.ErrUnauthorized, errdefs.ErrForbidden} {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}
