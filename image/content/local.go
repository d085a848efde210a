package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// TemporaryRefPrefix marks refs no later writer will ask for again (their
// digest was unknown): Open drops their partial ingests at once.
const TemporaryRefPrefix = "tmp-"

// LocalStore is a Store on a local filesystem.
type LocalStore struct {
	root string
}

// Options tunes Open.
type Options struct {
	// StaleIngest is the age after which an unlocked partial ingest is
	// deleted by Open instead of being kept for a resume. Zero means 24h.
	StaleIngest time.Duration
}

// Open opens (creating if needed) a store under root and removes stale
// unlocked ingests left by crashed writers.
func Open(root string, opts Options) (*LocalStore, error) {
	for _, d := range []string{"blobs/sha256", "ingest"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("content store %s: %w", root, err)
		}
	}
	s := &LocalStore{root: root}
	if opts.StaleIngest == 0 {
		opts.StaleIngest = 24 * time.Hour
	}
	if err := s.cleanIngests(opts.StaleIngest); err != nil {
		return nil, err
	}
	return s, nil
}

// Root returns the directory the store lives in.
func (s *LocalStore) Root() string { return s.root }

func (s *LocalStore) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %s: unsupported algorithm", d)
	}
	return filepath.Join(s.root, "blobs", "sha256", d.Encoded()), nil
}

// cleanIngests deletes ingests older than maxAge whose lock nobody holds.
func (s *LocalStore) cleanIngests(maxAge time.Duration) error {
	dir := filepath.Join(s.root, "ingest")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("clean ingests: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(filepath.Join(p, "data"))
		_, terr := os.Stat(filepath.Join(p, "temporary"))
		if err == nil && time.Since(fi.ModTime()) < maxAge && terr != nil {
			continue // young and resumable: kept for a resume
		}
		lk, err := tryLock(filepath.Join(p, "lock"))
		if err != nil {
			continue // held by a live writer
		}
		os.RemoveAll(p)
		lk.Close()
	}
	return nil
}

func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// lock takes the ingest lock, polling so that ctx can cancel the wait.
func lock(ctx context.Context, path string) (*os.File, error) {
	delay := time.Millisecond
	for {
		f, err := tryLock(path)
		if err == nil {
			if sameFile(f, path) {
				return f, nil
			}
			// The holder removed the ingest before unlocking: our lock is
			// on a dead inode. Take the lock on the new file instead.
			f.Close()
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("lock ingest: %w", err)
			}
			continue
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock ingest: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock ingest: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// Info returns size and time of a committed blob.
func (s *LocalStore) Info(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	} else if err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: fi.Size(), Created: fi.ModTime()}, nil
}

type fileReaderAt struct {
	*os.File
	size int64
}

func (f fileReaderAt) Size() int64 { return f.size }

// ReaderAt opens a committed blob.
func (s *LocalStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error) {
	p, err := s.blobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return fileReaderAt{f, fi.Size()}, nil
}

// Walk calls fn for each committed blob.
func (s *LocalStore) Walk(ctx context.Context, fn func(Info) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		if err := fn(Info{Digest: d, Size: fi.Size(), Created: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes a committed blob.
func (s *LocalStore) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", d, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Writer opens the ingest for ref, resuming a partial one. It returns an
// error wrapping ErrAlreadyExists when desc.Digest is already committed.
func (s *LocalStore) Writer(ctx context.Context, ref string, desc ocispec.Descriptor) (Writer, error) {
	if desc.Digest != "" {
		if _, err := s.Info(ctx, desc.Digest); err == nil {
			return nil, fmt.Errorf("blob %s: %w", desc.Digest, ErrAlreadyExists)
		}
	}
	key := sha256.Sum256([]byte(ref))
	dir := filepath.Join(s.root, "ingest", hex.EncodeToString(key[:]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	lk, err := lock(ctx, filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	// Another process may have committed while we waited for the lock.
	if desc.Digest != "" {
		if _, err := s.Info(ctx, desc.Digest); err == nil {
			lk.Close()
			return nil, fmt.Errorf("blob %s: %w", desc.Digest, ErrAlreadyExists)
		}
	}
	if strings.HasPrefix(ref, TemporaryRefPrefix) {
		os.WriteFile(filepath.Join(dir, "temporary"), nil, 0o600)
	}
	w, err := s.openIngest(dir, desc)
	if err != nil {
		lk.Close()
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	w.lock = lk
	return w, nil
}

func (s *LocalStore) openIngest(dir string, desc ocispec.Descriptor) (*writer, error) {
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	// Resume: re-hash what an earlier writer left, so the digest covers it.
	n, err := io.Copy(h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("rehash partial ingest: %w", err)
	}
	if desc.Size > 0 && n > desc.Size {
		// Longer than the blob can be: garbage, start over.
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		h.Reset()
		n = 0
	}
	return &writer{s: s, dir: dir, f: f, h: h, off: n, desc: desc}, nil
}

type writer struct {
	s    *LocalStore
	dir  string
	f    *os.File
	lock *os.File
	h    hash.Hash
	off  int64
	desc ocispec.Descriptor
}

func (w *writer) Offset() int64 { return w.off }

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.off += int64(n)
	return n, err
}

func (w *writer) Commit(ctx context.Context) (digest.Digest, error) {
	d := digest.NewDigest(digest.SHA256, w.h)
	if w.desc.Size > 0 && w.off != w.desc.Size {
		return "", fmt.Errorf("commit %s: size %d, expected %d", w.desc.Digest, w.off, w.desc.Size)
	}
	if w.desc.Digest != "" && d != w.desc.Digest {
		// Corrupt: drop it, a resume would only carry the corruption on.
		w.Abort()
		return "", fmt.Errorf("commit: got digest %s, expected %s", d, w.desc.Digest)
	}
	// The data must be on disk before the rename makes it visible, or a
	// crash could leave a visible blob with a hole.
	if err := w.f.Sync(); err != nil {
		return "", fmt.Errorf("commit %s: %w", d, err)
	}
	target, _ := w.s.blobPath(d)
	if err := os.Rename(filepath.Join(w.dir, "data"), target); err != nil {
		return "", fmt.Errorf("commit %s: %w", d, err)
	}
	os.Chmod(target, 0o400)
	// Remove before unlocking: a waiter then sees the blob, not an ingest.
	os.RemoveAll(w.dir)
	w.Close()
	return d, nil
}

func (w *writer) Abort() error {
	err := os.RemoveAll(w.dir)
	w.Close()
	if err != nil {
		return fmt.Errorf("abort ingest: %w", err)
	}
	return nil
}

func (w *writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.lock.Close()
	w.f, w.lock = nil, nil
	return err
}
