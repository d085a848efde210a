package rootfs

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/nsthread"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestSharedDirs sets up a container as the engine's spawner does, with
// Options.Shared: its masked directories and its read-only cgroup v1
// /sys/fs/cgroup are binds of the one shared tmpfs, no tmpfs of their own
// is made, and nothing can be written there, not even through a mount
// made writable again.
func TestSharedDirs(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	shared, err := NewSharedDirs()
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	hs := selfHierarchies(t)
	v1 := len(hs) > 1 || hs[0].controllers != ""

	cmd := exec.Command("sh", "-c", "echo ready; read x")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP,
	}
	pid := testutil.StartReady(t, cmd)
	proc := "/proc/" + strconv.Itoa(pid)
	spec := runcSpec()
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	types := unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP
	tmpfs := 0
	maker := FSFunc(func(typ string, c FSConfig) (int, error) {
		if typ == "tmpfs" {
			tmpfs++
		}
		return NewFS(typ, c)
	})
	var r *Root
	bundle := newBundle(t)
	err = nsthread.Run(pid, types, func() error {
		cgroups, err := os.ReadFile(proc + "/cgroup")
		if err != nil {
			return err
		}
		r, err = Setup(spec, bundle, Options{FS: maker, Cgroups: func() ([]byte, error) { return cgroups, nil }, Shared: shared})
		if err != nil {
			return err
		}
		return r.Pivot()
	})
	t.Cleanup(func() { r.Close() })
	if err != nil {
		t.Fatalf("Setup and Pivot: %v", err)
	}
	// /dev and /dev/shm only.
	if tmpfs != 2 {
		t.Errorf("%d tmpfs made, want 2 (/dev, /dev/shm)", tmpfs)
	}
	mounts, err := readMountinfo(proc + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	rep := report{Mounts: mounts}
	want := map[string]string{"/sys/firmware": "/empty"}
	if v1 {
		want["/sys/fs/cgroup"] = "/cgroup"
	}
	for point, root := range want {
		m, ok := mountAt(rep, point)
		if !ok || m.FSType != "tmpfs" || m.Root != root || !hasOpt(m.SuperOpts, "ro") || !hasOpt(m.SuperOpts, "nr_inodes=128") {
			t.Errorf("%s: %+v, want the shared tmpfs's %s", point, m, root)
		}
		for _, o := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !hasOpt(m.Opts, o) {
				t.Errorf("%s: mount options %s lack %s", point, m.Opts, o)
			}
		}
	}
	if v1 {
		checkCgroupMounts(t, rep, false)
	}

	// In the container's namespace: the mask is read-only, and stays so
	// with its mount made writable (the superblock is read-only).
	err = nsthread.Run(pid, unix.CLONE_NEWNS, func() error {
		if err := unix.Mkdir("/sys/firmware/x", 0o755); !errors.Is(err, unix.EROFS) {
			t.Errorf("mkdir in the mask: %v, want EROFS", err)
		}
		fd, err := unix.Open("/sys/firmware", unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return err
		}
		if err := unix.Mkdir("/sys/firmware/x", 0o755); !errors.Is(err, unix.EROFS) {
			t.Errorf("mkdir in the mask made rw: %v, want EROFS", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSharedDirsCgroupBase: the shared base serves only a set of
// hierarchies it has every mount point of (a host whose hierarchies
// changed since it was made gets a tmpfs).
func TestSharedDirsCgroupBase(t *testing.T) {
	s := &SharedDirs{fd: -1, dirs: map[string]bool{"memory": true, "cpu,cpuacct": true, "cpu": true, "cpuacct": true}}
	for _, tc := range []struct {
		hs   []hierarchy
		want bool
	}{
		{[]hierarchy{{controllers: "memory"}, {controllers: "cpu,cpuacct"}}, true},
		{[]hierarchy{{controllers: "memory"}, {controllers: "pids"}}, false},
		{[]hierarchy{{controllers: "memory"}, {controllers: ""}}, false}, // no "unified"
	} {
		if got := s.hasMountPoints(tc.hs); got != tc.want {
			t.Errorf("hasMountPoints(%v) = %v, want %v", tc.hs, got, tc.want)
		}
	}
}
