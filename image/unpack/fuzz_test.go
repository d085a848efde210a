package unpack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack checks that no layer, however malformed, panics Apply or
// writes anything outside the target directory.
func FuzzUnpack(f *testing.F) {
	for _, data := range escapes(f) {
		f.Add(data)
		f.Add(gz(data))
	}
	good := mkTar(f, dir("a/", 0o755), file("a/f", "hello", 0o644), symlink("a/l", "f"),
		hardlink("a/h", "a/f"), file("a/.wh.x", "", 0), file("a/.wh..wh..opq", "", 0))
	f.Add(good)
	f.Add(good[:700])
	f.Add(zst(good))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		target := filepath.Join(base, "layer")
		os.Mkdir(target, 0o755)
		sentinel := filepath.Join(base, "sentinel")
		os.WriteFile(sentinel, []byte("keep"), 0o600)
		Apply(context.Background(), bytes.NewReader(data), target, Options{MaxBytes: 4 << 20, MaxEntries: 1000})
		ents, _ := os.ReadDir(base)
		if len(ents) != 2 {
			t.Fatalf("entries beside the layer: %v", ents)
		}
		if b, _ := os.ReadFile(sentinel); !bytes.Equal(b, []byte("keep")) {
			t.Fatal("sentinel changed")
		}
		if _, err := os.Lstat("/tmp/escape"); err == nil {
			t.Fatal("/tmp/escape written")
		}
	})
}
