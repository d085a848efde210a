package rootfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/nsthread"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestSetupFromThread is the runtime doing the mounts of a container whose
// init does nothing: Setup and Pivot run on a runtime thread that joined
// the init's mount, net, ipc and uts namespaces, and new file systems come
// from an FSMaker (here made in that thread too, so the proc shows the
// test's pid namespace). Whether init follows the pivot depends on where its
// root and cwd were.
func TestSetupFromThread(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	for _, tc := range []struct {
		name string
		// init sets up how the child starts.
		init func(t *testing.T, attr *syscall.SysProcAttr, cmd *exec.Cmd)
		// notFollowed is what CheckFollowed must name ("" if it
		// must pass).
		notFollowed string
		cgroupNS    bool
	}{
		{name: "init at /", init: func(t *testing.T, _ *syscall.SysProcAttr, cmd *exec.Cmd) { cmd.Dir = "/" }},
		{name: "cgroup namespace", cgroupNS: true, init: func(t *testing.T, attr *syscall.SysProcAttr, cmd *exec.Cmd) {
			cmd.Dir = "/"
			attr.Cloneflags |= unix.CLONE_NEWCGROUP
		}},
		{name: "init's cwd elsewhere", notFollowed: "cwd", init: func(t *testing.T, _ *syscall.SysProcAttr, cmd *exec.Cmd) {
			cmd.Dir = t.TempDir()
		}},
		{name: "init chrooted", notFollowed: "root", init: func(t *testing.T, attr *syscall.SysProcAttr, cmd *exec.Cmd) {
			// The busybox of another rootfs, found after the
			// chroot.
			attr.Chroot = filepath.Join(newBundle(t), "rootfs")
			cmd.Path, cmd.Args = "/bin/busybox", append([]string{"busybox"}, cmd.Args...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := newBundle(t)
			if err := os.WriteFile(filepath.Join(bundle, "rootfs/marker"), []byte("remote"), 0o644); err != nil {
				t.Fatal(err)
			}
			// A shell blocked in its builtin read, touching no file
			// any more: a dynamic program still loading its
			// libraries would die of the pivot.
			cmd := exec.Command("sh", "-c", "echo ready; read x")
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS,
			}
			tc.init(t, cmd.SysProcAttr, cmd)
			pid := testutil.StartReady(t, cmd)
			proc := "/proc/" + strconv.Itoa(pid)
			spec := runcSpec()
			types := unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS
			if tc.cgroupNS {
				spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
				types |= unix.CLONE_NEWCGROUP
			}

			var made []string
			maker := FSFunc(func(typ string, c FSConfig) (int, error) {
				made = append(made, typ)
				return NewFS(typ, c)
			})
			var r *Root
			err := nsthread.Run(pid, types, func() error {
				// Read from inside init's cgroup namespace (its
				// paths are relative to the reader's), through the
				// host's /proc, still there before the pivot.
				cgroups, err := os.ReadFile(proc + "/cgroup")
				if err != nil {
					return err
				}
				r, err = Setup(spec, bundle, Options{FS: maker, Cgroups: func() ([]byte, error) { return cgroups, nil }})
				if err != nil {
					return err
				}
				return r.Pivot()
			})
			t.Cleanup(func() { r.Close() })
			if err != nil {
				t.Fatalf("Setup and Pivot in the init's namespaces: %v", err)
			}
			for _, typ := range []string{"proc", "tmpfs", "devpts", "mqueue", "sysfs"} {
				if !slices.Contains(made, typ) {
					t.Errorf("no %s made by the FSMaker (made: %v)", typ, made)
				}
			}

			err = r.CheckFollowed(pid)
			switch {
			case tc.notFollowed == "" && err != nil:
				t.Fatalf("CheckFollowed: %v", err)
			case tc.notFollowed != "" && (err == nil || !strings.Contains(err.Error(), "'s "+tc.notFollowed+" is not")):
				t.Fatalf("CheckFollowed = %v, want an error about the %s", err, tc.notFollowed)
			case tc.notFollowed != "":
				return // its /proc/<pid>/mountinfo is relative to a root elsewhere
			}
			if b, err := os.ReadFile(proc + "/root/marker"); err != nil || string(b) != "remote" {
				t.Errorf("init's root does not hold the rootfs: %q, %v", b, err)
			}
			mounts, err := readMountinfo(proc + "/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			rep := report{Mounts: mounts}
			noHostMounts(t, rep)
			for _, p := range []string{"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/proc/sys", "/proc/keys", "/sys/firmware"} {
				if _, ok := mountAt(rep, p); !ok {
					t.Errorf("no mount at %s in init's namespace", p)
				}
			}
			if m, _ := mountAt(rep, "/dev/pts"); m.FSType != "devpts" {
				t.Errorf("/dev/pts: %+v", m)
			}
			// Read from the host's cgroup namespace, mountinfo shows
			// cgroup roots as the host sees them, in a namespace or not.
			checkCgroupMounts(t, rep, false)
			if newCgroup := slices.ContainsFunc(made, func(typ string) bool { return strings.HasPrefix(typ, "cgroup") }); newCgroup != tc.cgroupNS {
				t.Errorf("new cgroup file systems made: %v, want %v (made: %v)", newCgroup, tc.cgroupNS, made)
			}
		})
	}
}
