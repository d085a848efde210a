package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestMountIDMapped(t *testing.T) {
	testutil.RequiresRoot(t)
	const base = 1 << 24
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: base, Size: 65536}}
	ns, err := rootfs.NewUserNS(m, m)
	if err != nil {
		t.Skipf("no user namespace: %v", err)
	}
	defer ns.Close()
	for _, tc := range []struct {
		name string
		byFD bool
	}{
		{"detached layers by descriptor", true},
		{"layers attached in a private mount namespace", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckNoNewMounts(t)
			ctx := context.Background()
			root := t.TempDir()
			s, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			top := addLayers(t, s, layerTar(t, "etc/", "etc/passwd"), layerTar(t, "bin/", "bin/sh"))
			ms, err := s.Prepare(ctx, "c1", top)
			if err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "rootfs")
			os.Mkdir(target, 0o755)
			err = mountIDMapped(ms, target, IDMap{UserNS: ns, UID: base, GID: base + 1}, tc.byFD)
			if errors.Is(err, ErrIDMapUnsupported) {
				// The v2 VM lane: 6.1, layers on tmpfs (idmapped from 6.3).
				t.Skipf("here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer Unmount(target)
			owner := func(p string) [2]uint32 {
				var st unix.Stat_t
				if err := unix.Lstat(p, &st); err != nil {
					t.Fatal(err)
				}
				return [2]uint32{st.Uid, st.Gid}
			}
			// The layers' root-owned files show as the container's root.
			for _, p := range []string{"etc", "etc/passwd", "bin/sh", "."} {
				want := [2]uint32{base, base}
				if p == "." {
					want = [2]uint32{base, base + 1} // the upper's root
				}
				if got := owner(filepath.Join(target, p)); got != want {
					t.Errorf("%s: owner %v, want %v", p, got, want)
				}
			}
			// A copy-up keeps the idmapped owner: the upper holds host ids
			// of the container's range, the layer stays root's.
			if err := os.WriteFile(filepath.Join(target, "etc/passwd"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			info, _ := s.Stat(ctx, "c1")
			upper := filepath.Join(root, "snapshots", info.ID, "fs")
			if got := owner(filepath.Join(upper, "etc/passwd")); got != [2]uint32{base, base} {
				t.Errorf("copied-up passwd: owner %v, want %d", got, base)
			}
			lowers, _ := s.LowerDirs(top)
			for _, l := range lowers {
				for _, p := range []string{"bin/sh", "etc/passwd"} {
					if p = filepath.Join(l, p); exists(p) && owner(p) != [2]uint32{0, 0} {
						t.Errorf("layer file %s changed owner: %v", p, owner(p))
					}
				}
			}
			if err := Unmount(target); err != nil {
				t.Fatal(err)
			}
			if err := s.Remove(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A file system that refuses idmapped mounts is reported as such, with
// nothing left mounted: the engine then falls back to plain layers.
func TestMountIDMappedUnsupported(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 24, Size: 65536}}
	ns, err := rootfs.NewUserNS(m, m)
	if err != nil {
		t.Skipf("no user namespace: %v", err)
	}
	defer ns.Close()
	target := t.TempDir()
	// sysfs allows no idmapped mount.
	ms := []Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/sys/kernel:/sys/fs"}}}
	err = MountIDMapped(ms, target, IDMap{UserNS: ns, UID: 1 << 24, GID: 1 << 24})
	if !errors.Is(err, ErrIDMapUnsupported) {
		t.Fatalf("err %v, want ErrIDMapUnsupported", err)
	}
}
