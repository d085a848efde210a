package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const testManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
	`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
	`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`

func blobDesc(data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

func TestResolveAndFetchManifest(t *testing.T) {
	f := newFake(t)
	d := f.addManifest("v1", ocispec.MediaTypeImageManifest, []byte(testManifest))
	c := New(Options{})
	ctx := testCtx(t)
	desc, err := c.Resolve(ctx, f.ref(t, "app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != d || desc.MediaType != ocispec.MediaTypeImageManifest || desc.Size != int64(len(testManifest)) {
		t.Fatalf("desc = %+v", desc)
	}
	data, err := c.FetchManifest(ctx, f.ref(t, "app:v1"), desc)
	if err != nil || string(data) != testManifest {
		t.Fatalf("FetchManifest = %q, %v", data, err)
	}
}

func TestManifestTampered(t *testing.T) {
	f := newFake(t)
	d := f.addManifest("v1", ocispec.MediaTypeImageManifest, []byte(testManifest))
	// The registry now serves other content under the same digest.
	tampered := strings.Replace(testManifest, `"size":2}]`, `"size":3}]`, 1)
	f.manifests[d.String()] = fakeManifest{ocispec.MediaTypeImageManifest, []byte(tampered)}
	c := New(Options{})
	_, err := c.FetchManifest(testCtx(t), f.ref(t, "app"), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(testManifest))})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("tampered manifest: %v, want ErrDigestMismatch", err)
	}
	// By tag, the Docker-Content-Digest header is the reference.
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/manifests/v2") {
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			w.Header().Set("Docker-Content-Digest", d.String())
			_, _ = w.Write([]byte(tampered))
			return true
		}
		return false
	}
	if _, err := c.Resolve(testCtx(t), f.ref(t, "app:v2")); err == nil {
		t.Log("HEAD answered; fetch must still catch it")
	}
	if _, _, err := c.getManifest(testCtx(t), f.ref(t, "app:v2"), "v2", ""); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("tampered by tag: %v, want ErrDigestMismatch", err)
	}
}

func TestSchema1Refused(t *testing.T) {
	f := newFake(t)
	f.addManifest("old", mediaTypeDockerSchema1Signed, []byte(`{"schemaVersion":1,"fsLayers":[]}`))
	_, err := New(Options{}).Resolve(testCtx(t), f.ref(t, "app:old"))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("schema 1: %v, want ErrUnsupported", err)
	}
}

func TestFetchBlobFaults(t *testing.T) {
	good := bytes.Repeat([]byte("estiba"), 10000)
	tests := []struct {
		name  string
		serve []byte
		want  error
	}{
		{"ok", good, nil},
		{"truncated", good[:len(good)-10], io.ErrUnexpectedEOF},
		{"longer", append(append([]byte{}, good...), 'x'), ErrDigestMismatch},
		{"wrong content", append(append([]byte{}, good[:len(good)-1]...), 'X'), ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.blobs[digest.FromBytes(good)] = tt.serve
			rc, err := New(Options{}).FetchBlob(testCtx(t), f.ref(t, "app"), blobDesc(good), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			_, err = io.Copy(io.Discard, rc)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("read: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFetchBlobRangeIgnored(t *testing.T) {
	good := bytes.Repeat([]byte("0123456789"), 1000)
	f := newFake(t)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			_, _ = w.Write(good) // 200 with the whole blob, Range ignored
			return true
		}
		return false
	}
	rc, err := New(Options{}).FetchBlob(testCtx(t), f.ref(t, "app"), blobDesc(good), 4321)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, good[4321:]) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
}

func TestRetryTransient(t *testing.T) {
	good := []byte("hello")
	f := newFake(t)
	f.blobs[digest.FromBytes(good)] = good
	var failures atomic.Int64
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") && failures.Add(1) <= 2 {
			writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE")
			return true
		}
		return false
	}
	c := New(Options{})
	rc, err := c.FetchBlob(testCtx(t), f.ref(t, "app"), blobDesc(good), 0)
	if err != nil {
		t.Fatalf("after two 503s: %v", err)
	}
	rc.Close()

	failures.Store(-100) // now always failing
	_, err = New(Options{Retries: 2}).FetchBlob(testCtx(t), f.ref(t, "app"), blobDesc(good), 0)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("persistent 503: %v, want ErrUnavailable", err)
	}
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		status int
		code   string
		want   error
	}{
		{404, "MANIFEST_UNKNOWN", ErrNotFound},
		{404, "NAME_UNKNOWN", ErrNotFound},
		{401, "UNAUTHORIZED", ErrUnauthorized},
		{403, "DENIED", ErrDenied},
		{429, "TOOMANYREQUESTS", ErrTooManyRequests},
		{400, "MANIFEST_INVALID", ErrInvalid},
		{405, "UNSUPPORTED", ErrUnsupported},
		{404, "", ErrNotFound},
		{403, "", ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			f := newFake(t)
			f.hook = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == "/v2/" {
					return false
				}
				if tt.code == "" {
					w.WriteHeader(tt.status)
				} else {
					writeError(w, tt.status, tt.code)
				}
				return true
			}
			_, err := New(Options{Retries: -1}).FetchManifest(testCtx(t), f.ref(t, "app"),
				ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("x"), Size: 1})
			if !errors.Is(err, tt.want) {
				t.Fatalf("%d %s: %v, want %v", tt.status, tt.code, err, tt.want)
			}
			var re *Error
			if !errors.As(err, &re) || re.Status != tt.status {
				t.Fatalf("error %v is not an *Error with status %d", err, tt.status)
			}
		})
	}
}

// TestTokenFlow: the registry answers 401 with a Bearer challenge; the client
// gets a token from the realm, with credentials, and caches it per scope.
func TestTokenFlow(t *testing.T) {
	var tokenRequests atomic.Int64
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		user, pass, _ := r.BasicAuth()
		if user != "u" || pass != "p" || r.URL.Query().Get("service") != "svc" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"tok-` + r.URL.Query().Get("scope") + `","expires_in":300}`))
	}))
	t.Cleanup(tokens.Close)
	good := []byte("blob")
	f := newFake(t)
	f.blobs[digest.FromBytes(good)] = good
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "Bearer tok-repository:app:pull" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+tokens.URL+`/token",service="svc",scope="repository:app:pull"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED")
		return true
	}
	c := New(Options{Credentials: staticCreds{"u", "p"}})
	for range 3 {
		rc, err := c.FetchBlob(testCtx(t), f.ref(t, "app"), blobDesc(good), 0)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if n := tokenRequests.Load(); n != 1 {
		t.Errorf("%d token requests for one scope, want 1", n)
	}
	bad := New(Options{Credentials: staticCreds{"u", "wrong"}})
	if _, err := bad.FetchBlob(testCtx(t), f.ref(t, "app"), blobDesc(good), 0); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v, want ErrUnauthorized", err)
	}
}

type staticCreds struct{ user, pass string }

func (s staticCreds) Credential(string) (Credential, error) {
	return Credential{Username: s.user, Password: s.pass}, nil
}

// TestRedirectDropsAuth: blobs redirected to storage on another host get the
// content but never the registry's credentials.
func TestRedirectDropsAuth(t *testing.T) {
	good := []byte("stored elsewhere")
	var sawAuth atomic.Bool
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth.Store(r.Header.Get("Authorization") != "")
		_, _ = w.Write(good)
	}))
	t.Cleanup(storage.Close)
	f := newFake(t)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			// A different host name for the same loopback server.
			http.Redirect(w, r, strings.Replace(storage.URL, "127.0.0.1", "localhost", 1)+"/b", http.StatusTemporaryRedirect)
			return true
		}
		return false
	}
	rc, err := New(Options{Credentials: staticCreds{"u", "p"}}).FetchBlob(testCtx(t), f.ref(t, "app"), blobDesc(good), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("got %q, %v", got, err)
	}
	if sawAuth.Load() {
		t.Error("storage host received the registry's Authorization header")
	}
}

func TestContextCancel(t *testing.T) {
	f := newFake(t)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v2/" {
			return false
		}
		select {
		case <-block:
		case <-r.Context().Done():
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(Options{}).Resolve(ctx, f.ref(t, "app:v1"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resolve on a stalled registry: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
}

func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	c := New(Options{Insecure: []string{"reg.lan:5000", "10.1.0.0/16", "plain.example"}})
	tests := map[string]bool{
		"localhost:5000":       true,
		"127.0.0.1:5000":       true,
		"127.3.4.5":            true,
		"[::1]:5000":           true,
		"reg.lan:5000":         true,
		"reg.lan:5001":         false,
		"10.1.2.3:443":         true,
		"10.2.0.1":             false,
		"plain.example:8080":   true,
		"registry-1.docker.io": false,
		"example.com":          false,
	}
	for host, want := range tests {
		if got := c.allowsPlainHTTP(host); got != want {
			t.Errorf("allowsPlainHTTP(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParseChallenge(t *testing.T) {
	ch, ok := parseChallenge([]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"`})
	if !ok || ch.scheme != "bearer" || ch.params["realm"] != "https://auth.docker.io/token" ||
		ch.params["service"] != "registry.docker.io" || ch.params["scope"] != "repository:a/b:pull,push" {
		t.Fatalf("challenge = %+v", ch)
	}
	ch, ok = parseChallenge([]string{`Negotiate`, `Basic realm="a \"quoted\" realm"`})
	if !ok || ch.scheme != "basic" || ch.params["realm"] != `a "quoted" realm` {
		t.Fatalf("challenge = %+v", ch)
	}
	if _, ok := parseChallenge([]string{"Negotiate abc"}); ok {
		t.Fatal("Negotiate accepted")
	}
}
