package topdir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMark(t *testing.T) {
	dir := t.TempDir()
	if err := Mark(dir); err != nil {
		t.Fatal(err)
	}
	ok, err := IsMarked(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skipf("%s: the file system has no FS_TOPDIR_FL (Mark ignored it, as it must)", dir)
	}
	// Marking again keeps it, and the other flags.
	if err := Mark(dir); err != nil {
		t.Fatal(err)
	}
	if ok, err := IsMarked(dir); err != nil || !ok {
		t.Fatalf("after a second Mark: %v %v", ok, err)
	}
}

func TestMarkErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "l")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing"), file, link} {
		if err := Mark(p); err == nil {
			t.Errorf("Mark(%s): no error", p)
		}
	}
}
