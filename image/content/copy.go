package content

import (
	"context"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"
)

// OpenFunc opens a blob's bytes from offset on (for resuming an ingest).
type OpenFunc func(ctx context.Context, offset int64) (io.ReadCloser, error)

// Fetcher copies remote blobs into an Ingester, once per digest at a time
// within this process (concurrent callers share one download) and safely
// across processes (the ingest lock).
type Fetcher struct {
	Store Store
	group singleflight.Group
}

// Fetch makes desc present in the store, reading it through open if missing.
// progress, if not nil, gets the number of bytes written as they arrive.
func (f *Fetcher) Fetch(ctx context.Context, desc ocispec.Descriptor, open OpenFunc, progress func(n int64)) error {
	if _, err := f.Store.Info(ctx, desc.Digest); err == nil {
		return nil
	}
	_, err, _ := f.group.Do(desc.Digest.String(), func() (any, error) {
		return nil, Copy(ctx, f.Store, desc, open, progress)
	})
	return err
}

// Copy writes desc into the store from open, resuming a partial ingest.
func Copy(ctx context.Context, st Ingester, desc ocispec.Descriptor, open OpenFunc, progress func(n int64)) error {
	w, err := st.Writer(ctx, desc.Digest.String(), desc)
	if errors.Is(err, ErrAlreadyExists) {
		return nil
	} else if err != nil {
		return err
	}
	defer w.Close()
	if progress != nil && w.Offset() > 0 {
		progress(w.Offset())
	}
	if w.Offset() < desc.Size || desc.Size == 0 {
		rc, err := open(ctx, w.Offset())
		if err != nil {
			return fmt.Errorf("fetch %s: %w", desc.Digest, err)
		}
		defer rc.Close()
		var dst io.Writer = w
		if progress != nil {
			dst = progressWriter{w, progress}
		}
		if _, err := io.CopyBuffer(dst, rc, make([]byte, 1<<20)); err != nil {
			return fmt.Errorf("fetch %s: %w", desc.Digest, err)
		}
	}
	if _, err := w.Commit(ctx); err != nil {
		return err
	}
	return nil
}

type progressWriter struct {
	w  io.Writer
	fn func(int64)
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.fn(int64(n))
	return n, err
}
