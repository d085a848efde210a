package service

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/estiba/estiba/image/archive"
	"github.com/estiba/estiba/image/snapshot"
	"github.com/estiba/estiba/internal/testutil"
)

func open(t *testing.T, root string, opts Options) *Service {
	t.Helper()
	s, err := Open(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func baseImage(t testing.TB) testImage {
	return newTestImage(t, "sh",
		layer(t, entry{name: "etc/", typ: tar.TypeDir}, entry{name: "etc/passwd", body: "root:x:0:0::/root:/bin/sh\n"},
			entry{name: "a/", typ: tar.TypeDir}, entry{name: "a/gone", body: "x"}),
		layer(t, entry{name: "a/", typ: tar.TypeDir}, entry{name: "a/.wh.gone"}, entry{name: "b", body: "b"}),
		randomLayer(t, 3, 20, 4096),
	)
}

// assertEmpty checks that the store holds no blob, snapshot or ingest.
func assertEmpty(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"content/blobs/sha256", "content/ingest", "snapshots/snapshots", "snapshots/l"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Errorf("%s not empty: %d entries", d, len(ents))
		}
	}
}

func TestLoadFormatsAndRemove(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	ti := baseImage(t)
	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"docker legacy", dockerArchive(t, ti, "example.com/app:1"), "example.com/app:1"},
		{"oci gzip", ociArchive(t, ti, "example.com/app:oci"), "example.com/app:oci"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := open(t, root, Options{})
			loaded, err := s.Load(ctx, bytes.NewReader(tc.archive))
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 1 || loaded[0].ID != ti.id() {
				t.Fatalf("loaded %+v", loaded)
			}
			img, err := s.Inspect(ctx, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Config.History) != 3 || img.Config.Config.Cmd[0] != "sh" {
				t.Fatalf("config %+v", img.Config)
			}
			// Loading again changes nothing.
			if _, err := s.Load(ctx, bytes.NewReader(tc.archive)); err != nil {
				t.Fatal(err)
			}
			if err := s.Tag(ctx, tc.want, "other:tag"); err != nil {
				t.Fatal(err)
			}
			rm, err := s.Remove(ctx, "other:tag", false)
			if err != nil || len(rm.Deleted) != 0 {
				t.Fatalf("untag: %+v %v", rm, err)
			}
			if _, err := s.Remove(ctx, tc.want, false); err != nil {
				t.Fatal(err)
			}
			if l, _ := s.List(ctx); len(l) != 0 {
				t.Fatalf("listed after rmi: %v", l)
			}
			assertEmpty(t, root)
		})
	}
}

func TestLoadRejectsBadDiffID(t *testing.T) {
	testutil.RequiresRoot(t)
	ti := baseImage(t)
	ti.layers[1] = layer(t, entry{name: "evil", body: "swapped"})
	root := t.TempDir()
	s := open(t, root, Options{})
	if _, err := s.Load(context.Background(), bytes.NewReader(dockerArchive(t, ti, "x:1"))); err == nil {
		t.Fatal("layer not matching diff_ids accepted")
	}
	if l, _ := s.List(context.Background()); len(l) != 0 {
		t.Fatal("half image listed")
	}
}

func TestRootfsAndDefaults(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	ctx := context.Background()
	root := t.TempDir()
	s := open(t, root, Options{})
	ti := baseImage(t)
	if _, err := s.Load(ctx, bytes.NewReader(dockerArchive(t, ti, "app:1"))); err != nil {
		t.Fatal(err)
	}
	rf, err := s.PrepareRootfs(ctx, "app:1", "c1", false)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(rf.Mounts, target); err != nil {
		t.Fatal(err)
	}
	d, derr := Defaults(rf.Config, target)
	_, goneErr := os.Stat(filepath.Join(target, "a/gone"))
	snapshot.Unmount(target)
	if derr != nil || d.User.UID != 0 || d.Cmd[0] != "sh" || d.WorkingDir != "/" {
		t.Fatalf("defaults %+v %v", d, derr)
	}
	if goneErr == nil {
		t.Fatal("whiteout not applied in the rootfs")
	}
	if _, err := s.Remove(ctx, "app:1", false); !errors.Is(err, ErrConflict) {
		t.Fatalf("removed an image in use: %v", err)
	}
	if keys, err := s.RootfsKeys(ctx); err != nil || !slices.Equal(keys, []string{"c1"}) {
		t.Fatalf("RootfsKeys = %q, %v; want [c1]", keys, err)
	}
	if err := s.RemoveRootfs(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.RootfsKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("RootfsKeys after RemoveRootfs = %q, %v", keys, err)
	}
	// The one-call form.
	_, d, err = s.MountRootfs(ctx, "app:1", "c2", target, true)
	if err != nil || d.Cmd[0] != "sh" {
		t.Fatalf("MountRootfs: %+v %v", d, err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
		t.Fatal("read-only rootfs is writable")
	}
	if err := s.UnmountRootfs(ctx, "c2", target); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, "app:1", false); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, root)
}

func TestImportSaveLoadRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{})
	rootfs := gz(layer(t, entry{name: "bin/", typ: tar.TypeDir}, entry{name: "bin/hello", body: "hi"}))
	id, err := s.Import(ctx, bytes.NewReader(rootfs), "imported:1", archive.ImportOptions{Changes: []string{`CMD ["/bin/hello"]`, "ENV A=b"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Inspect(ctx, "imported:1")
	if err != nil || img.ID != id || img.Config.Config.Cmd[0] != "/bin/hello" || img.Config.Config.Env[0] != "A=b" {
		t.Fatalf("imported %+v %v", img, err)
	}
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{"imported:1"}); err != nil {
		t.Fatal(err)
	}
	other := open(t, t.TempDir(), Options{})
	loaded, err := other.Load(ctx, &buf)
	if err != nil || len(loaded) != 1 || loaded[0].ID != id {
		t.Fatalf("reload: %+v %v", loaded, err)
	}
	if _, err := other.Inspect(ctx, "imported:1"); err != nil {
		t.Fatal(err)
	}
}

func TestPrune(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	s := open(t, root, Options{})
	if _, err := s.Load(ctx, bytes.NewReader(dockerArchive(t, baseImage(t)))); err != nil {
		t.Fatal(err)
	}
	del, err := s.Prune(ctx)
	if err != nil || len(del) != 1 {
		t.Fatalf("prune %v %v", del, err)
	}
	assertEmpty(t, root)
}

// TestPodmanInterop: podman loads what Save writes, and Load reads what
// podman save writes.
func TestPodmanInterop(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "podman")
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{})
	ti := baseImage(t)
	if _, err := s.Load(ctx, bytes.NewReader(ociArchive(t, ti, "localhost/estiba-interop:gz"))); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "saved.tar")
	f, _ := os.Create(out)
	if err := s.Save(ctx, f, []string{"localhost/estiba-interop:gz"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	podman := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("podman", append([]string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}, args...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	t.Cleanup(func() { podman("rmi", "-a", "-f") })
	podman("load", "-i", out)
	podman("image", "exists", "localhost/estiba-interop:gz")
	back := filepath.Join(dir, "podman.tar")
	podman("save", "-o", back, "localhost/estiba-interop:gz")
	other := open(t, t.TempDir(), Options{})
	pf, _ := os.Open(back)
	defer pf.Close()
	loaded, err := other.Load(ctx, pf)
	if err != nil || len(loaded) != 1 || loaded[0].ID != ti.id() {
		t.Fatalf("load podman save: %+v %v", loaded, err)
	}
	if _, err := other.Inspect(ctx, "localhost/estiba-interop:gz"); err != nil {
		t.Fatal(err)
	}
}
