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
	_, err := f.FetchStream(ctx, desc, open, progress, nil)
	return err
}

// FetchStream is Fetch that also hands the bytes to consume while they are
// written, when this call downloads the blob from its first byte. consume
// reads to EOF or fails; its result is only trustworthy if FetchStream
// returns no error (the digest is checked at the end). streamed tells
// whether consume saw the whole blob; if not (blob present, download
// shared with another caller, or resumed), read the blob from the store.
func (f *Fetcher) FetchStream(ctx context.Context, desc ocispec.Descriptor, open OpenFunc, progress func(n int64), consume func(io.Reader) error) (streamed bool, err error) {
	if _, err := f.Store.Info(ctx, desc.Digest); err == nil {
		return false, nil
	}
	_, err, _ = f.group.Do(desc.Digest.String(), func() (any, error) {
		var err error
		streamed, err = copyStream(ctx, f.Store, desc, open, progress, consume)
		return nil, err
	})
	return streamed, err
}

// Copy writes desc into the store from open, resuming a partial ingest.
func Copy(ctx context.Context, st Ingester, desc ocispec.Descriptor, open OpenFunc, progress func(n int64)) error {
	_, err := copyStream(ctx, st, desc, open, progress, nil)
	return err
}

func copyStream(ctx context.Context, st Ingester, desc ocispec.Descriptor, open OpenFunc, progress func(n int64), consume func(io.Reader) error) (bool, error) {
	w, err := st.Writer(ctx, desc.Digest.String(), desc)
	if errors.Is(err, ErrAlreadyExists) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer w.Close()
	if progress != nil && w.Offset() > 0 {
		progress(w.Offset())
	}
	streamed := false
	if w.Offset() < desc.Size || desc.Size == 0 {
		rc, err := open(ctx, w.Offset())
		if err != nil {
			return false, fmt.Errorf("fetch %s: %w", desc.Digest, err)
		}
		defer rc.Close()
		var dst io.Writer = w
		if progress != nil {
			dst = progressWriter{w, progress}
		}
		var wait func(error) error
		if consume != nil && w.Offset() == 0 {
			dst, wait = teeTo(dst, consume)
			streamed = true
		}
		_, err = io.CopyBuffer(dst, rc, make([]byte, 1<<20))
		if wait != nil {
			if cerr := wait(err); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return false, fmt.Errorf("fetch %s: %w", desc.Digest, err)
		}
	}
	if _, err := w.Commit(ctx); err != nil {
		return false, err
	}
	return streamed, nil
}

// teeTo writes to w and to a pipe consume reads in its own goroutine; wait
// ends the stream (with the copy's error) and returns consume's.
func teeTo(w io.Writer, consume func(io.Reader) error) (io.Writer, func(error) error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := consume(pr)
		pr.CloseWithError(fmt.Errorf("consumer stopped: %w", errOr(err, io.ErrClosedPipe)))
		done <- err
	}()
	return io.MultiWriter(w, pw), func(copyErr error) error {
		pw.CloseWithError(copyErr) // nil: EOF for the consumer
		return <-done
	}
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
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
