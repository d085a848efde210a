// Package archive loads and saves image archives: docker-archive tarballs
// (as `docker save` and `podman save` write them, legacy per-layer
// directories and the newer OCI-style blobs/sha256 layout) and OCI image
// layouts, and imports plain rootfs tarballs.
//
// Load reads the archive once, front to back: each layer entry is hashed
// into the content store, then unpacked from there into a staging
// directory by a goroutine of its own while the next entries are read
// (layers unpack in parallel, each inflated by its own core), before the
// manifest (usually last) says which image it belongs to. Import, with its
// single layer, unpacks while it stores instead.
package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"

	"github.com/estiba/estiba/image/content"
	"github.com/estiba/estiba/image/unpack"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Blobs is the content store as Load and Save use it.
type Blobs interface {
	content.Ingester
	content.Provider
	Info(ctx context.Context, d digest.Digest) (content.Info, error)
}

// Layers is the snapshotter as Load uses it.
type Layers interface {
	StagingDir() (string, error)
	AdoptDir(ctx context.Context, name, parent, dir string) error
	LowerDirs(parent string) ([]string, error)
	Exists(ctx context.Context, key string) bool
	Apply(ctx context.Context, name, parent string, fill func(dir string, lowers []string) error) error
}

// Image is one image found in an archive, its blobs and layers stored.
type Image struct {
	Names      []string // as the archive spells them, not normalized
	Manifest   ocispec.Descriptor
	Config     ocispec.Image
	ConfigDesc ocispec.Descriptor
}

// maxJSON bounds the in-memory metadata entries (manifests, configs).
const maxJSON = 16 << 20

type layerEntry struct {
	desc    ocispec.Descriptor
	res     unpack.Result
	staging string
	adopted bool
}

type loader struct {
	blobs  Blobs
	layers Layers
	opts   unpack.Options
	files  map[string][]byte // small metadata entries by archive path
	loaded map[string]*layerEntry

	// unpacks run layer unpacks in the background (Load); nil unpacks
	// inline (Import). Entries' res and desc are read only after Wait.
	unpacks *errgroup.Group
	slots   chan struct{}
}

// Load reads an archive from r, storing blobs and layer snapshots, and
// returns the images it holds. The caller records them.
func Load(ctx context.Context, r io.Reader, blobs Blobs, layers Layers, opts unpack.Options) ([]Image, error) {
	l := &loader{blobs: blobs, layers: layers, opts: opts, files: map[string][]byte{}, loaded: map[string]*layerEntry{}}
	defer l.cleanup()
	if err := l.readParallel(ctx, r); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var imgs []Image
	var err error
	switch {
	case l.files["manifest.json"] != nil:
		imgs, err = l.dockerImages(ctx)
	case l.files["index.json"] != nil:
		imgs, err = l.ociImages(ctx)
	default:
		err = errors.New("neither manifest.json nor index.json: not a docker-archive or OCI layout")
	}
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return imgs, nil
}

func (l *loader) cleanup() {
	for _, e := range l.loaded {
		if e.staging != "" && !e.adopted {
			os.RemoveAll(e.staging)
		}
	}
}

// readParallel is read with layers unpacked in the background; it returns
// once every unpack has finished (so cleanup never races one).
func (l *loader) readParallel(ctx context.Context, r io.Reader) error {
	g, gctx := errgroup.WithContext(ctx)
	l.unpacks = g
	l.slots = make(chan struct{}, max(2, min(runtime.NumCPU(), 4)))
	err := l.read(gctx, r)
	if werr := g.Wait(); err == nil || errors.Is(err, context.Canceled) && werr != nil {
		err = werr
	}
	return err
}

func (l *loader) read(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<20))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			if hdr.Typeflag == tar.TypeSymlink {
				// Legacy docker-archives link identical layers:
				// <id>/layer.tar -> ../<other>/layer.tar.
				l.files["symlink:"+path.Clean(hdr.Name)] = []byte(path.Join(path.Dir(hdr.Name), hdr.Linkname))
			}
			continue
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if err := ctx.Err(); err != nil {
			return err // an unpack failed
		}
		if err := l.entry(ctx, name, hdr.Size, tr); err != nil {
			return fmt.Errorf("archive entry %s: %w", name, err)
		}
	}
}

func (l *loader) entry(ctx context.Context, name string, size int64, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	if isLayer(head) {
		if l.unpacks != nil {
			return l.layerBackground(ctx, name, size, br)
		}
		return l.layer(ctx, name, size, br)
	}
	if size > maxJSON {
		return fmt.Errorf("%d bytes: neither a layer nor metadata", size)
	}
	b, err := io.ReadAll(br)
	if err != nil {
		return err
	}
	l.files[name] = b
	return nil
}

// isLayer tells layers from metadata by content: compressed streams and
// tar headers ("ustar" at offset 257).
func isLayer(head []byte) bool {
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) || bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return true
	}
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

// expectedDigest returns the digest a blobs/sha256/<hex> path promises.
func expectedDigest(name string) digest.Digest {
	if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
		d := digest.NewDigestFromEncoded(digest.SHA256, hex)
		if d.Validate() == nil {
			return d
		}
	}
	return ""
}

// layer stores the entry as a blob and unpacks it into a staging dir at
// once; the blob write runs in its own goroutine.
func (l *loader) layer(ctx context.Context, name string, size int64, r io.Reader) error {
	want := ocispec.Descriptor{Digest: expectedDigest(name), Size: size}
	ref := want.Digest.String()
	if ref == "" {
		ref = content.TemporaryRefPrefix + "load-" + randHex()
	}
	staging, err := l.layers.StagingDir()
	if err != nil {
		return err
	}
	e := &layerEntry{staging: staging}
	l.loaded[name] = e
	w, err := l.blobs.Writer(ctx, ref, want)
	exists := errors.Is(err, content.ErrAlreadyExists)
	if err != nil && !exists {
		return err
	}
	var tee *asyncTee
	src := r
	if !exists {
		tee = newAsyncTee(r, w)
		src = tee
	}
	e.res, err = unpack.Apply(ctx, src, staging, l.opts)
	if err == nil {
		_, err = io.Copy(io.Discard, src) // trailing bytes after the compressed stream
	}
	if tee != nil {
		if werr := tee.wait(); err == nil {
			err = werr
		}
	}
	if err != nil {
		if w != nil {
			w.Abort()
		}
		return err
	}
	e.desc = ocispec.Descriptor{MediaType: layerMediaType(e.res.Compression), Size: size, Digest: want.Digest}
	if exists {
		return nil
	}
	d, err := w.Commit(ctx)
	if errors.Is(err, content.ErrAlreadyExists) {
		err = nil
	}
	e.desc.Digest = d
	return err
}

// layerBackground stores the entry as a blob, then unpacks the stored blob
// into a staging dir in the background (bounded by l.slots). The unpack
// reads the verified blob, not the archive: a layer whose blob was already
// stored is not written again.
func (l *loader) layerBackground(ctx context.Context, name string, size int64, r io.Reader) error {
	want := ocispec.Descriptor{Digest: expectedDigest(name), Size: size}
	staging, err := l.layers.StagingDir()
	if err != nil {
		return err
	}
	e := &layerEntry{staging: staging}
	l.loaded[name] = e
	d, err := storeBlob(ctx, l.blobs, want, r)
	if err != nil {
		return err
	}
	e.desc = ocispec.Descriptor{Size: size, Digest: d}
	l.unpacks.Go(func() error {
		if err := acquire(ctx, l.slots); err != nil {
			return err
		}
		defer func() { <-l.slots }()
		ra, err := l.blobs.ReaderAt(ctx, e.desc)
		if err != nil {
			return err
		}
		defer ra.Close()
		e.res, err = unpack.Apply(ctx, io.NewSectionReader(ra, 0, ra.Size()), staging, l.opts)
		if err != nil {
			return fmt.Errorf("archive entry %s: %w", name, err)
		}
		e.desc.MediaType = layerMediaType(e.res.Compression)
		return nil
	})
	return nil
}

// storeBlob writes r as a blob (verified against want's digest and size
// when set) and returns its digest; an already stored blob is not written
// again (r is drained).
func storeBlob(ctx context.Context, blobs Blobs, want ocispec.Descriptor, r io.Reader) (digest.Digest, error) {
	ref := want.Digest.String()
	if ref == "" {
		ref = content.TemporaryRefPrefix + "load-" + randHex()
	}
	w, err := blobs.Writer(ctx, ref, want)
	if errors.Is(err, content.ErrAlreadyExists) {
		_, err = io.Copy(io.Discard, r)
		return want.Digest, err
	}
	if err != nil {
		return "", err
	}
	if w.Offset() != 0 {
		// A partial ingest of an earlier load: this archive has all of it.
		w.Abort()
		if w, err = blobs.Writer(ctx, ref, want); err != nil {
			return "", err
		}
	}
	if _, err := io.CopyBuffer(w, r, make([]byte, 1<<20)); err != nil {
		w.Abort()
		return "", err
	}
	d, err := w.Commit(ctx)
	if errors.Is(err, content.ErrAlreadyExists) {
		err = nil
	}
	if err != nil {
		w.Abort()
		return "", err
	}
	return d, nil
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func layerMediaType(c unpack.Compression) string {
	switch c {
	case unpack.Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case unpack.Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

func randHex() string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

// asyncTee passes reads through and hands copies to a writer goroutine, so
// hashing and writing the blob overlaps unpacking.
type asyncTee struct {
	r    io.Reader
	ch   chan []byte
	done chan error
	pool *sync.Pool
	once sync.Once
}

func newAsyncTee(r io.Reader, w io.Writer) *asyncTee {
	t := &asyncTee{r: r, ch: make(chan []byte, 32), done: make(chan error, 1),
		pool: &sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}}
	go func() {
		var err error
		for b := range t.ch {
			if err == nil {
				_, err = w.Write(b)
			}
			b = b[:0]
			t.pool.Put(&b)
		}
		t.done <- err
	}()
	return t
}

func (t *asyncTee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	for off := 0; off < n; {
		bp := t.pool.Get().(*[]byte)
		c := min(n-off, cap(*bp))
		b := append((*bp)[:0], p[off:off+c]...)
		t.ch <- b
		off += c
	}
	return n, err
}

func (t *asyncTee) wait() error {
	t.once.Do(func() { close(t.ch) })
	return <-t.done
}
