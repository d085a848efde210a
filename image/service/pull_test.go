package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeRegistry serves one image over HTTP: GET /manifest returns the
// manifest descriptor's target, GET /blobs/<digest> serves blobs with Range.
// A blob can be made to stall after half its bytes.
type fakeRegistry struct {
	blobs    map[digest.Digest][]byte
	manifest ocispec.Descriptor
	mu       sync.Mutex
	stall    digest.Digest
	release  chan struct{}
	ranges   []int64
}

func newFakeRegistry(t *testing.T, ti testImage) *fakeRegistry {
	r := &fakeRegistry{blobs: map[digest.Digest][]byte{}, release: make(chan struct{})}
	add := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		r.blobs[d.Digest] = b
		return d
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range ti.layers {
		m.Layers = append(m.Layers, add(ocispec.MediaTypeImageLayerGzip, gz(l)))
	}
	m.Config = add(ocispec.MediaTypeImageConfig, ti.config)
	mb, _ := json.Marshal(m)
	r.manifest = add(ocispec.MediaTypeImageManifest, mb)
	return r
}

func (r *fakeRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/manifest" {
		json.NewEncoder(w).Encode(r.manifest)
		return
	}
	d := digest.Digest(strings.TrimPrefix(req.URL.Path, "/blobs/"))
	b, ok := r.blobs[d]
	if !ok {
		http.NotFound(w, req)
		return
	}
	var off int64
	if rg := req.Header.Get("Range"); rg != "" {
		off, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
	}
	r.mu.Lock()
	r.ranges = append(r.ranges, off)
	stall := r.stall == d
	r.mu.Unlock()
	b = b[off:]
	if stall {
		half := len(b) / 2
		w.Write(b[:half])
		w.(http.Flusher).Flush()
		select {
		case <-r.release:
		case <-req.Context().Done():
			return
		}
		b = b[half:]
	}
	w.Write(b)
}

// httpRegistry is the Registry the tests pull through.
type httpRegistry struct{ base string }

func (h httpRegistry) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	var d ocispec.Descriptor
	resp, err := http.Get(h.base + "/manifest")
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

func (h httpRegistry) Fetch(ctx context.Context, ref string, desc ocispec.Descriptor, off int64) (io.ReadCloser, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", h.base+"/blobs/"+desc.Digest.String(), nil)
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", desc.Digest, resp.Status)
	}
	return resp.Body, nil
}

func bigImage(t testing.TB) testImage {
	return newTestImage(t, "sh", randomLayer(t, 1, 50, 8192), randomLayer(t, 2, 400, 8192), randomLayer(t, 3, 10, 100))
}

func TestPull(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	ti := bigImage(t)
	reg := newFakeRegistry(t, ti)
	srv := httptest.NewServer(reg)
	defer srv.Close()
	root := t.TempDir()
	s := open(t, root, Options{Registry: httpRegistry{srv.URL}})
	// Concurrent first pulls share downloads and snapshots.
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if _, err := s.Pull(ctx, "example.com/big:other", ocispec.Platform{}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	cwg.Wait()
	if _, err := s.Remove(ctx, "example.com/big:other", false); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, root)
	var events []Progress
	id, err := s.Pull(ctx, "example.com/big:1", ocispec.Platform{}, func(p Progress) { events = append(events, p) })
	if err != nil {
		t.Fatal(err)
	}
	if id != ti.id() {
		t.Fatalf("id %s", id)
	}
	done := 0
	for _, e := range events {
		if e.Status == "done" {
			done++
		}
	}
	if done != 3 {
		t.Fatalf("progress events: %+v", events)
	}
	// Concurrent pulls of a present image, then a second pull, find
	// everything present.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Pull(ctx, "example.com/big:1", ocispec.Platform{}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	events = nil
	if _, err := s.Pull(ctx, "example.com/big:1", ocispec.Platform{}, func(p Progress) { events = append(events, p) }); err != nil {
		t.Fatal(err)
	}
	if events[0].Status != "resolved" || events[1].Status != "exists" {
		t.Fatalf("repull events %+v", events)
	}
	if _, err := s.Remove(ctx, "example.com/big:1", false); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, root)
}

// TestPullChild is the child process of TestPullKilled.
func TestPullChild(t *testing.T) {
	root, url := os.Getenv("ESTIBA_PULL_CHILD_ROOT"), os.Getenv("ESTIBA_PULL_CHILD_URL")
	if root == "" {
		t.Skip("child of TestPullKilled only")
	}
	s := open(t, root, Options{Registry: httpRegistry{url}})
	s.Pull(context.Background(), "example.com/big:1", ocispec.Platform{}, nil)
	t.Fatal("pull returned: it should have been killed while stalled")
}

// TestPullKilled SIGKILLs a pull in the middle of a layer download: the
// store must list nothing, and the next pull resumes and completes.
func TestPullKilled(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	ti := bigImage(t)
	reg := newFakeRegistry(t, ti)
	var m ocispec.Manifest
	json.Unmarshal(reg.blobs[reg.manifest.Digest], &m)
	reg.stall = m.Layers[1].Digest
	srv := httptest.NewServer(reg)
	defer srv.Close()
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPullChild$")
	cmd.Env = append(os.Environ(), "ESTIBA_PULL_CHILD_ROOT="+root, "ESTIBA_PULL_CHILD_URL="+srv.URL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	partial := waitForPartialIngest(t, root, m.Layers[1].Digest, m.Layers[1].Size)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if partial == 0 {
		t.Fatal("no partial download seen")
	}
	close(reg.release)
	s := open(t, root, Options{Registry: httpRegistry{srv.URL}})
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("after kill: %v %v", l, err)
	}
	if _, err := s.Pull(ctx, "example.com/big:1", ocispec.Platform{}, nil); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List(ctx); len(l) != 1 || l[0].ID != ti.id() {
		t.Fatalf("after re-pull: %+v", l)
	}
	resumed := false
	for _, off := range reg.ranges {
		resumed = resumed || off > 0
	}
	if !resumed {
		t.Fatalf("no resumed download; ranges %v", reg.ranges)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "snapshots", "snapshots")); len(ents) != 3 {
		t.Fatalf("snapshot dirs: %d (staging left?)", len(ents))
	}
}

// waitForPartialIngest waits until the stalled blob's ingest holds the half
// the server sent before stalling.
func waitForPartialIngest(t *testing.T, root string, d digest.Digest, size int64) int64 {
	key := sha256.Sum256([]byte(d.String()))
	data := filepath.Join(root, "content", "ingest", hex.EncodeToString(key[:]), "data")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(data); err == nil && fi.Size() >= size/2 {
			return fi.Size()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}

// TestPullTamperedLayer: a layer whose bytes do not match its digest fails
// the pull, even though it was unpacked while streaming, and leaves nothing.
func TestPullTamperedLayer(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	ti := bigImage(t)
	reg := newFakeRegistry(t, ti)
	var m ocispec.Manifest
	json.Unmarshal(reg.blobs[reg.manifest.Digest], &m)
	evil := gz(layer(t, entry{name: "evil", body: string(make([]byte, 100))}))
	reg.blobs[m.Layers[2].Digest] = evil
	srv := httptest.NewServer(reg)
	defer srv.Close()
	root := t.TempDir()
	s := open(t, root, Options{Registry: httpRegistry{srv.URL}})
	if _, err := s.Pull(ctx, "example.com/big:1", ocispec.Platform{}, nil); err == nil {
		t.Fatal("tampered layer accepted")
	}
	if l, _ := s.List(ctx); len(l) != 0 {
		t.Fatalf("listed: %v", l)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "snapshots", "snapshots")); len(ents) > 2 {
		t.Fatalf("%d snapshot dirs left; staging leaked?", len(ents))
	}
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
}
