package openat

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 511, 512, 513, 5000} {
		want := bytes.Repeat([]byte{'x'}, size)
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("size %d: got %d bytes, %v", size, len(got), err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	// A /proc file reports size 0 but has content; mountinfo is longer
	// than the first buffer, so the growth path runs too.
	for _, p := range []string{"/proc/self/cgroup", "/proc/self/mountinfo"} {
		b, err := ReadFile(p)
		if err != nil || len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s: %d bytes, %v", p, len(b), err)
		}
	}
}
