package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/testutil"
)

func attachedDevicePrograms(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ids, err := queryDevicePrograms(fd)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// TestDeviceProgramKernel loads, attaches and replaces device programs on a
// cgroup2 directory of its own, wherever the host has a cgroup2 mount (also
// the hybrid one, where the v1 devices controller and the program both
// apply), and checks that the kernel accepts the programs and enforces them.
func TestDeviceProgramKernel(t *testing.T) {
	testutil.RequiresRoot(t)
	var mnt string
	for _, m := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var fs unix.Statfs_t
		if unix.Statfs(m, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
			mnt = m
			break
		}
	}
	if mnt == "" {
		t.Skip("no cgroup2 mount")
	}
	dir := filepath.Join(mnt, fmt.Sprintf("estiba-bpftest-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	run := func(script string) (string, error) {
		cg, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer cg.Close()
		cmd := exec.Command("sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	denyAll := deviceRule{allow: false, typ: 'a', major: -1, minor: -1, access: "rwm"}
	null := deviceRule{allow: true, typ: 'c', major: 1, minor: 3, access: "rwm"}
	zeroR := deviceRule{allow: true, typ: 'c', major: 1, minor: 5, access: "r"}
	if err := setDevicesBPF(dir, []deviceRule{denyAll, null}); err != nil {
		t.Fatal(err)
	}
	if out, err := run("echo x >/dev/null && head -c1 /dev/zero >/dev/null"); err == nil || !strings.Contains(out, "not permitted") {
		t.Errorf("/dev/zero with only /dev/null allowed: err %v, output %q; want EPERM", err, out)
	}
	// Replace: zero readable, not writable; still exactly one program.
	if err := setDevicesBPF(dir, []deviceRule{denyAll, null, zeroR}); err != nil {
		t.Fatal(err)
	}
	out, err := run("head -c1 /dev/zero >/dev/null && echo read-ok; echo x >/dev/zero || echo write-denied")
	if err != nil || !strings.Contains(out, "read-ok") || !strings.Contains(out, "write-denied") {
		t.Errorf("after replace: err %v, output %q; want read-ok and write-denied", err, out)
	}
	if n := attachedDevicePrograms(t, dir); n != 1 {
		t.Errorf("%d device programs attached after a replace, want 1", n)
	}
}
