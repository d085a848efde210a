package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func TestWriteVerifyRead(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello blob")
	tests := []struct {
		name    string
		desc    ocispec.Descriptor
		wantErr bool
	}{
		{"wrong digest", ocispec.Descriptor{Digest: digest.FromString("x"), Size: int64(len(data))}, true},
		{"wrong size", ocispec.Descriptor{Digest: digest.FromBytes(data), Size: 3}, true},
		{"good", descOf(data), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := s.Writer(ctx, tc.name, tc.desc)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.Write(data)
			_, err = w.Commit(ctx)
			if (err != nil) != tc.wantErr {
				t.Fatalf("commit err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if _, err := s.Info(ctx, tc.desc.Digest); !errors.Is(err, ErrNotFound) {
					t.Fatalf("failed blob visible: %v", err)
				}
				return
			}
			ra, err := s.ReaderAt(ctx, tc.desc)
			if err != nil {
				t.Fatal(err)
			}
			defer ra.Close()
			got, _ := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
			if !bytes.Equal(got, data) {
				t.Fatalf("read %q", got)
			}
		})
	}
	if _, err := s.Writer(ctx, "again", descOf(data)); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("second write: %v", err)
	}
	n := 0
	s.Walk(ctx, func(Info) error { n++; return nil })
	if n != 1 {
		t.Fatalf("walk saw %d blobs", n)
	}
	if err := s.Delete(ctx, digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, _ := Open(root, Options{})
	data := bytes.Repeat([]byte("0123456789"), 1000)
	desc := descOf(data)
	w, _ := s.Writer(ctx, desc.Digest.String(), desc)
	w.Write(data[:4000])
	w.Close() // interrupted
	s, _ = Open(root, Options{})
	var gotOff int64 = -1
	err := Copy(ctx, s, desc, func(_ context.Context, off int64) (io.ReadCloser, error) {
		gotOff = off
		return io.NopCloser(bytes.NewReader(data[off:])), nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gotOff != 4000 {
		t.Fatalf("resumed at %d", gotOff)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "ingest")); len(ents) != 0 {
		t.Fatalf("ingest left: %v", ents)
	}
}

func TestStaleIngestCleaned(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, _ := Open(root, Options{})
	w, _ := s.Writer(ctx, "r", ocispec.Descriptor{})
	w.Write([]byte("partial"))
	w.Close()
	if _, err := Open(root, Options{StaleIngest: -1}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "ingest")); len(ents) != 0 {
		t.Fatalf("stale ingest kept: %v", ents)
	}
}

func TestFetchOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := Open(t.TempDir(), Options{})
	data := bytes.Repeat([]byte("x"), 1<<20)
	desc := descOf(data)
	var opens atomic.Int32
	release := make(chan struct{})
	f := &Fetcher{Store: s}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f.Fetch(ctx, desc, func(context.Context, int64) (io.ReadCloser, error) {
				opens.Add(1)
				<-release
				return io.NopCloser(bytes.NewReader(data)), nil
			}, nil)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(release)
	wg.Wait()
	if n := opens.Load(); n > 8 || n < 1 {
		t.Fatalf("opens = %d", n)
	}
	if _, err := s.Info(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestIngestLockedAcrossWriters(t *testing.T) {
	ctx := context.Background()
	s, _ := Open(t.TempDir(), Options{})
	data := []byte("locked blob")
	desc := descOf(data)
	a, err := s.Writer(ctx, "ref", desc)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file: a second writer waits even in-process, as a
	// second process would.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.Writer(short, "ref", desc); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second writer: %v", err)
	}
	a.Write(data)
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "ref", desc); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("after commit: %v", err)
	}
}

func TestTemporaryIngestCleaned(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, _ := Open(root, Options{})
	for _, ref := range []string{TemporaryRefPrefix + "x", "resumable"} {
		w, _ := s.Writer(ctx, ref, ocispec.Descriptor{})
		w.Write([]byte("partial"))
		w.Close()
	}
	Open(root, Options{})
	if ents, _ := os.ReadDir(filepath.Join(root, "ingest")); len(ents) != 1 {
		t.Fatalf("ingests after open: %d, want the resumable one", len(ents))
	}
}
