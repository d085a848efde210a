package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estiba/estiba/image/reference"
	"github.com/opencontainers/go-digest"
)

// fakeRegistry is an in-process registry for fault injection: it serves
// blobs and manifests from maps, and hook, when set, can answer first.
type fakeRegistry struct {
	*httptest.Server
	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	manifests map[string]fakeManifest // by tag or digest
	hook      func(w http.ResponseWriter, r *http.Request) bool
	requests  atomic.Int64
}

type fakeManifest struct {
	mediaType string
	data      []byte
}

func newFake(t *testing.T) *fakeRegistry {
	f := &fakeRegistry{blobs: map[digest.Digest][]byte{}, manifests: map[string]fakeManifest{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *fakeRegistry) ref(t *testing.T, s string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(f.host() + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fakeRegistry) addManifest(tag, mediaType string, data []byte) digest.Digest {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := digest.FromBytes(data)
	f.manifests[tag] = fakeManifest{mediaType, data}
	f.manifests[d.String()] = fakeManifest{mediaType, data}
	return d
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	if r.URL.Path == "/v2/" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := strings.Index(r.URL.Path, "/manifests/"); i >= 0 {
		m, ok := f.manifests[r.URL.Path[i+len("/manifests/"):]]
		if !ok {
			writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN")
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(m.data).String())
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(m.data)))
		return
	}
	if i := strings.Index(r.URL.Path, "/blobs/"); i >= 0 {
		b, ok := f.blobs[digest.Digest(r.URL.Path[i+len("/blobs/"):])]
		if !ok {
			writeError(w, http.StatusNotFound, "BLOB_UNKNOWN")
			return
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(b)))
		return
	}
	writeError(w, http.StatusNotFound, "NAME_UNKNOWN")
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"injected"}]}`))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
