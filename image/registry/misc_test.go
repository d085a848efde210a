package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estiba/estiba/image/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestResolveHeadIncomplete: a registry whose HEAD lacks
// Docker-Content-Digest is resolved with a verified GET.
func TestResolveHeadIncomplete(t *testing.T) {
	f := newFake(t)
	d := f.addManifest("v1", ocispec.MediaTypeImageManifest, []byte(testManifest))
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			return true
		}
		return false
	}
	desc, err := New(Options{}).Resolve(testCtx(t), f.ref(t, "app:v1"))
	if err != nil || desc.Digest != d {
		t.Fatalf("Resolve = %+v, %v", desc, err)
	}
}

func TestTagsPaginated(t *testing.T) {
	f := newFake(t)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/tags/list") {
			return false
		}
		if r.URL.Query().Get("last") == "" {
			w.Header().Set("Link", `</v2/app/tags/list?n=2&last=b>; rel="next"`)
			fmt.Fprint(w, `{"name":"app","tags":["a","b"]}`)
		} else {
			fmt.Fprint(w, `{"name":"app","tags":["c"]}`)
		}
		return true
	}
	tags, err := New(Options{}).Tags(testCtx(t), f.ref(t, "app"))
	if err != nil || strings.Join(tags, ",") != "a,b,c" {
		t.Fatalf("Tags = %v, %v", tags, err)
	}
}

// TestIdentityToken: a stored identity token is exchanged with the OAuth2
// refresh-token POST, never sent as a password.
func TestIdentityToken(t *testing.T) {
	var form map[string][]string
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		if r.Method != http.MethodPost || r.PostForm.Get("refresh_token") != "idt" || r.PostForm.Get("grant_type") != "refresh_token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"access_token":"at"}`)
	}))
	t.Cleanup(tokens.Close)
	f := newFake(t)
	f.addManifest("v1", ocispec.MediaTypeImageManifest, []byte(testManifest))
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "Bearer at" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+tokens.URL+`",service="s"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	c := New(Options{Credentials: credFunc(func(string) (Credential, error) { return Credential{IdentityToken: "idt"}, nil })})
	if _, err := c.Resolve(testCtx(t), f.ref(t, "app:v1")); err != nil {
		t.Fatalf("Resolve: %v (token form %v)", err, form)
	}
	if form["scope"][0] != "repository:app:pull" || form["service"][0] != "s" {
		t.Errorf("token form %v", form)
	}
}

type credFunc func(string) (Credential, error)

func (f credFunc) Credential(h string) (Credential, error) { return f(h) }

// TestCredentialErrorSurfaces: a credential store that cannot answer (a
// credential helper) fails the request clearly instead of going anonymous.
func TestCredentialErrorSurfaces(t *testing.T) {
	f := newFake(t)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	c := New(Options{Credentials: credFunc(func(string) (Credential, error) { return Credential{}, ErrUnsupported })})
	if _, err := c.Resolve(testCtx(t), f.ref(t, "app:v1")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Resolve: %v, want ErrUnsupported", err)
	}
}

// recordingTransport fails every request and records its URL.
type recordingTransport struct {
	mu   sync.Mutex
	urls []string
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.urls = append(rt.urls, r.URL.String())
	rt.mu.Unlock()
	return nil, errors.New("no network in tests")
}

// TestHTTPSOnly: a registry that is neither loopback nor declared insecure
// is never contacted over plain HTTP; docker.io goes to registry-1.docker.io.
func TestHTTPSOnly(t *testing.T) {
	for _, tt := range []struct {
		ref, want string
		insecure  []string
	}{
		{"registry.example/app:v1", "https://registry.example/v2/|", nil},
		{"alpine", "https://registry-1.docker.io/v2/|", nil},
		{"registry.example/app:v1", "https://registry.example/v2/|http://registry.example/v2/|", []string{"registry.example"}},
	} {
		rt := &recordingTransport{}
		r, _ := reference.Parse(tt.ref)
		_, err := New(Options{Transport: rt, Insecure: tt.insecure}).Resolve(testCtx(t), r)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", tt.ref, err)
		}
		if got := strings.Join(rt.urls, "|") + "|"; got != tt.want {
			t.Errorf("%s contacted %s, want %s", tt.ref, got, tt.want)
		}
	}
}

// TestIdleTimeout: a blob body that stops flowing fails with ErrUnavailable
// after IdleTimeout, not at the caller's (far) deadline.
func TestIdleTimeout(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	good := []byte(strings.Repeat("z", 1000))
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			return false
		}
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write(good[:10])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	}
	c := New(Options{IdleTimeout: 200 * time.Millisecond})
	rc, err := c.FetchBlob(testCtx(t), f.ref(t, "app"), blobDesc(good), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start := time.Now()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stalled body: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stall detected after %v", d)
	}
}

// TestUploadElsewhereGetsNoCredentials: an upload Location on another host
// receives the blob but not the registry's Authorization header.
func TestUploadElsewhereGetsNoCredentials(t *testing.T) {
	var sawAuth atomic.Bool
	var got []byte
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth.Store(sawAuth.Load() || r.Header.Get("Authorization") != "")
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(storage.Close)
	f := newFake(t)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
			w.Header().Set("Location", strings.Replace(storage.URL, "127.0.0.1", "localhost", 1)+"/upload/1")
			w.WriteHeader(http.StatusAccepted)
			return true
		}
		return false
	}
	blob := []byte("pushed elsewhere")
	err := New(Options{Credentials: staticCreds{"u", "p"}}).PushBlob(testCtx(t), f.ref(t, "app"), blobDesc(blob), bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(blob) {
		t.Fatalf("storage got %q", got)
	}
	if sawAuth.Load() {
		t.Error("upload host received the registry's Authorization header")
	}
}
