package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/estiba/estiba/image/unpack"
	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/internal/topdir"
)

func layerTar(t *testing.T, entries ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e, Mode: 0o644, Typeflag: tar.TypeReg}
		if e[len(e)-1] == '/' {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// addLayers commits one snapshot per layer tar, returning the top key.
func addLayers(t *testing.T, s *Snapshotter, layers ...[]byte) string {
	parent := ""
	for i, l := range layers {
		name := fmt.Sprintf("%s/%d", parent, i)
		err := s.Apply(context.Background(), name, parent, func(dir string, lowers []string) error {
			_, err := unpack.Apply(context.Background(), bytes.NewReader(l), dir, unpack.Options{Lowers: lowers})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	return parent
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func checkEmpty(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"snapshots", "l"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Errorf("%s not empty: %v", d, ents)
		}
	}
}

func TestOverlayThreeLayers(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	top := addLayers(t, s,
		layerTar(t, "a/", "a/keep", "a/gone", "o/", "o/old"),
		layerTar(t, "a/.wh.gone", "o/", "o/.wh..wh..opq", "o/new"),
		layerTar(t, "l3"),
	)
	ms, err := s.Prepare(ctx, "c1", top)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != "overlay" {
		t.Fatalf("mounts %+v", ms)
	}
	target := t.TempDir()
	if err := MountAll(ms, target); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a/keep": true, "a/gone": false, "o/old": false, "o/new": true, "l3": true} {
		if exists(filepath.Join(target, p)) != want {
			t.Errorf("%s exists = %v", p, !want)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "written"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Usage(ctx, "c1"); err != nil || u.Inodes < 2 {
		t.Fatalf("usage %+v %v", u, err)
	}
	if err := s.Remove(ctx, top); !errors.Is(err, ErrInUse) {
		t.Fatalf("remove parent of active: %v", err)
	}
	if rm, _ := s.GC(ctx, nil); len(rm) != 0 {
		t.Fatalf("GC removed ancestors of an active snapshot: %v", rm)
	}
	if err := s.Remove(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "c1") {
		t.Fatal("removed active snapshot still recorded")
	}
	if err := s.Remove(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second removal: %v", err)
	}
	if rm, err := s.GC(ctx, nil); err != nil || len(rm) != 3 {
		t.Fatalf("GC removed %v, %v", rm, err)
	}
	checkEmpty(t, root)
}

func TestOverlayManyLayers(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	ctx := context.Background()
	// A long root makes absolute lowerdirs overflow the page for sure.
	root := filepath.Join(t.TempDir(), "a-rather-long-directory-name-for-the-image-store-root")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var layers [][]byte
	for i := range 120 {
		layers = append(layers, layerTar(t, fmt.Sprintf("f%d", i)))
	}
	top := addLayers(t, s, layers...)
	ms, err := s.View(ctx, "v", top)
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Dir == "" {
		t.Fatalf("expected the relative short-link form")
	}
	target := t.TempDir()
	if err := MountAll(ms, target); err != nil {
		t.Fatal(err)
	}
	ok := exists(filepath.Join(target, "f0")) && exists(filepath.Join(target, "f119"))
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("layers missing from the view")
	}
	s.Remove(ctx, "v")
	if _, err := s.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	checkEmpty(t, root)
}

func TestMountsShape(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Apply(ctx, "base", "", func(string, []string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, parent string
		view        bool
		typ         string
	}{
		{"rw-empty", "", false, "bind"},
		{"ro-one", "base", true, "bind"},
		{"rw-one", "base", false, "overlay"},
	}
	for _, tc := range tests {
		var ms []Mount
		if tc.view {
			ms, err = s.View(ctx, tc.key, tc.parent)
		} else {
			ms, err = s.Prepare(ctx, tc.key, tc.parent)
		}
		if err != nil || len(ms) != 1 || ms[0].Type != tc.typ {
			t.Errorf("%s: %+v %v", tc.key, ms, err)
		}
	}
	if _, err := s.Prepare(ctx, "rw-one", "base"); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate key: %v", err)
	}
	// A crash mid-Apply leaves an extract record: the next Open drops it.
	s.create("extract-x-1", "base", Active)
	s.Close()
	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Stat(ctx, "extract-x-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("leftover extract: %v", err)
	}
}

// TestLinksOnlyForCommitted: a container's snapshot (active) gets no short
// link, a committed layer does, and removing either leaves no link behind.
func TestLinksOnlyForCommitted(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	links := func() int { ents, _ := os.ReadDir(filepath.Join(root, "l")); return len(ents) }
	top := addLayers(t, s, layerTar(t, "a"), layerTar(t, "b"))
	if links() != 2 {
		t.Fatalf("%d links for 2 committed layers", links())
	}
	if _, err := s.Prepare(ctx, "c", top); err != nil {
		t.Fatal(err)
	}
	if links() != 2 {
		t.Fatalf("an active snapshot got a link: %d links", links())
	}
	if err := s.Commit(ctx, "C", "c"); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, "C")
	if err != nil || info.Link == "" || !exists(filepath.Join(root, "l", info.Link)) {
		t.Fatalf("committed snapshot without its link: %+v %v", info, err)
	}
	ms, err := s.Prepare(ctx, "d", "C")
	if err != nil {
		t.Fatal(err)
	}
	if o := fmt.Sprint(ms[0].Options); !bytes.Contains([]byte(o), []byte(info.Link)) {
		t.Errorf("overlay on C does not name its link %s: %s", info.Link, o)
	}
	for _, k := range []string{"d", "C", top, "/0"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Fatal(k, err)
		}
	}
	checkEmpty(t, root)
}

// TestSnapshotsSpread: the snapshots directory is marked for ext4 to
// spread the snapshots' trees (topdir), where the file system has the flag.
func TestSnapshotsSpread(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	probe := filepath.Join(root, "probe")
	if err := os.Mkdir(probe, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := topdir.Mark(probe); err != nil {
		t.Fatal(err)
	}
	want, _ := topdir.IsMarked(probe)
	if got, err := topdir.IsMarked(filepath.Join(root, "snapshots")); err != nil || got != want {
		t.Fatalf("snapshots marked: %v (%v), want %v", got, err, want)
	}
}

// BenchmarkRemoveAmongMany: removing a container's snapshot while 1000
// others exist (a host full of containers). Only a committed snapshot can
// be a parent, so an active one's removal scans nothing: its cost does
// not grow with the number of snapshots.
func BenchmarkRemoveAmongMany(b *testing.B) {
	ctx := context.Background()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 1000 {
		if _, err := s.Prepare(ctx, fmt.Sprintf("other-%d", i), ""); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("c-%d", i)
		b.StopTimer()
		if _, err := s.Prepare(ctx, key, ""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.Remove(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
