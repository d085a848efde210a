// Package content stores blobs addressed by their digest.
//
// Layout under the root directory:
//
//	blobs/sha256/<hex>    committed blobs, read-only, complete and verified
//	ingest/<key>/data     a blob being written; key is the hex of sha256(ref)
//	ingest/<key>/lock     flock(2) target: one writer per ref across processes
//
// A blob appears under blobs/ only by rename(2) of a verified ingest file, so
// readers never see a partial blob. An interrupted write leaves its ingest
// behind; the next writer of the same ref resumes at its size.
package content

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNotFound is wrapped by errors about a missing blob.
var ErrNotFound = errors.New("content: not found")

// ErrAlreadyExists is returned by Writer when the blob is already committed.
var ErrAlreadyExists = errors.New("content: already exists")

// Info describes a committed blob.
type Info struct {
	Digest  digest.Digest
	Size    int64
	Created time.Time
}

// ReaderAt reads a committed blob.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Provider gives read access to blobs.
type Provider interface {
	ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error)
}

// Ingester starts writes of new blobs.
type Ingester interface {
	// Writer opens (or resumes) the ingest for ref. desc.Digest and
	// desc.Size, when set, are verified at Commit.
	Writer(ctx context.Context, ref string, desc ocispec.Descriptor) (Writer, error)
}

// Manager inspects and deletes committed blobs.
type Manager interface {
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
	Walk(ctx context.Context, fn func(Info) error) error
	Delete(ctx context.Context, dgst digest.Digest) error
}

// Writer writes one blob. Close without Commit keeps the partial ingest for
// a later resume; Abort discards it.
type Writer interface {
	io.Writer
	// Offset is where the next Write lands: non-zero when resuming.
	Offset() int64
	// Commit verifies size and digest, then makes the blob visible.
	Commit(ctx context.Context) (digest.Digest, error)
	Abort() error
	Close() error
}

// Store is the full content store.
type Store interface {
	Provider
	Ingester
	Manager
}
