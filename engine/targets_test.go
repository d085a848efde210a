package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestEnsureMountTargetsStaysInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	// The hostile image points /etc at a host directory.
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(file, nil, 0o644)
	// Through the planted symlink: refused (it resolves inside the root,
	// to a path that does not exist there), never created outside.
	if err := ensureMountTargets(root, []specs.Mount{{Destination: "/etc/hosts", Type: "bind", Source: file}}, 0); err == nil {
		t.Error("mount point through a dangling in-root symlink was accepted")
	}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc"},
		{Destination: "/data/deep/dir", Type: "bind", Source: t.TempDir()},
	}
	if err := ensureMountTargets(root, mounts, 0); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("wrote outside the rootfs: %v", ents)
	}
	for _, p := range []string{"proc", "data/deep/dir"} {
		if st, err := os.Stat(filepath.Join(root, p)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestEnsureMountTargetsOwner(t *testing.T) {
	testutil.RequiresRoot(t)
	const owner = 1 << 20
	file := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		name  string
		owner uint32
	}{{"host root", 0}, {"user namespace root", owner}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			os.Mkdir(filepath.Join(root, "etc"), 0o755) // the image's: kept as it is
			mounts := []specs.Mount{
				{Destination: "/data/deep", Type: "bind", Source: t.TempDir()},
				{Destination: "/etc/hosts", Type: "bind", Source: file},
			}
			if err := ensureMountTargets(root, mounts, tc.owner); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]uint32{"data": tc.owner, "data/deep": tc.owner, "etc/hosts": tc.owner, "etc": 0} {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
					t.Fatal(err)
				}
				if st.Uid != want || st.Gid != want {
					t.Errorf("%s: owner %d:%d, want %d", p, st.Uid, st.Gid, want)
				}
			}
		})
	}
}

func TestEnsureMountTargetsSkipsNested(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(file, nil, 0o644)
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc"},
		{Destination: "/dev", Type: "tmpfs"},
		{Destination: "/dev/pts", Type: "devpts"},
		{Destination: "/dev/shm", Type: "tmpfs"},
		{Destination: "/sys", Type: "sysfs"},
		{Destination: "/sys/fs/cgroup", Type: "cgroup"},
		{Destination: "/device", Type: "bind", Source: file},
		{Destination: "/etc/hosts", Type: "bind", Source: file},
		{Destination: "/data", Type: "bind", Source: t.TempDir()},
		{Destination: "/data/inner", Type: "bind", Source: t.TempDir()},
	}
	if err := ensureMountTargets(root, mounts, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"proc", true}, {"dev", true}, {"sys", true}, {"etc/hosts", true}, {"device", true}, {"data", true},
		{"dev/pts", false}, {"dev/shm", false}, {"sys/fs", false}, {"data/inner", false},
	} {
		_, err := os.Lstat(filepath.Join(root, tc.path))
		if got := err == nil; got != tc.want {
			t.Errorf("%s exists: %v, want %v", tc.path, got, tc.want)
		}
	}
}
