package engine_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestE2EUsernsIDMap: a default (--userns=auto) container sees the image's
// files as its root's (idmapped layers, no chown of the shared layers), its
// root writes /etc (copy-up), what it writes lands in the upper layer with
// its host ids, and nothing is left after rm, across a kill -9 of the daemon
// too. --userns=host and --privileged keep the host's view.
func TestE2EUsernsIDMap(t *testing.T) {
	e := startE2E(t)
	e.steps([]step{{"estiba", []string{"import", busyboxTar(t, e.work), "e2e/idm"}, "sha256:", 0}})
	for _, mode := range [][]string{nil, {"--userns", "host"}, {"--privileged"}} {
		args := append(append([]string{"run", "--rm"}, mode...), "e2e/idm", "sh", "-c",
			"busybox stat -c %u:%g /bin/busybox /etc/passwd / && touch /etc/newfile && echo ok >> /etc/passwd && busybox stat -c %u:%g /etc/newfile")
		out, errs, code := e.estiba(args...)
		if strings.Contains(errs, "host bounding set lacks") {
			t.Logf("run %v: skipped, this host cannot run privileged containers: %s", mode, errs)
			continue
		}
		if want := "0:0\n0:0\n0:0\n0:0\n"; code != 0 || out != want {
			t.Errorf("run %v: exit %d, %q%s; want %q", mode, code, out, errs, want)
		}
	}

	e.steps([]step{{"estiba", []string{"run", "-d", "--name", "idm", "e2e/idm", "sleep", "60"}, "", 0}})
	id := strings.TrimSpace(mustRun(t, e, "inspect", "-f", "{{.Id}}", "idm"))
	uidMap := strings.Fields(mustRun(t, e, "exec", "idm", "cat", "/proc/self/uid_map"))
	if len(uidMap) != 3 || uidMap[0] != "0" || uidMap[1] == "0" {
		t.Fatalf("uid_map %v: not a user namespace container", uidMap)
	}
	base, _ := strconv.Atoi(uidMap[1])
	e.steps([]step{
		{"estiba", []string{"exec", "idm", "touch", "/etc/newfile"}, "", 0},
		{"estiba", []string{"exec", "idm", "sh", "-c", "echo 'app:x:1000:1000::/:/bin/sh' >> /etc/passwd"}, "", 0},
		{"estiba", []string{"exec", "idm", "grep", "app:x:1000", "/etc/passwd"}, "app", 0},
		{"estiba", []string{"exec", "idm", "sh", "-c", "echo 10.0.0.9 db >> /etc/hosts"}, "", 0},
	})
	// No image file shows as nobody. /proc and /sys are the kernel's: a
	// procfs or sysfs root belongs to the host's root, whatever the mount.
	for _, l := range strings.Split(mustRun(t, e, "exec", "idm", "busybox", "ls", "-ln", "/", "/etc"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 9 && (f[2] != "0" || f[3] != "0") && f[8] != "proc" && f[8] != "sys" {
			t.Errorf("ls -ln: %q is not root's", l)
		}
	}
	// The daemon unmounts its copy of the rootfs once init has pivoted:
	// the overlay is read from the container's own mount table.
	pid := strings.TrimSpace(mustRun(t, e, "inspect", "-f", "{{.State.Pid}}", "idm"))
	upper := upperDir(t, "/proc/"+pid+"/mountinfo", "/")
	for _, p := range []string{"etc/newfile", "etc/passwd", "etc"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, p), &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Uid) != base || int(st.Gid) != base {
			t.Errorf("upper %s: owner %d:%d, want the container's root %d", p, st.Uid, st.Gid, base)
		}
	}

	// kill -9 of the daemon: the restarted one adopts the container and
	// its rm leaves nothing.
	e.restartDaemon(t)
	e.steps([]step{
		{"estiba", []string{"exec", "idm", "grep", "app:x:1000", "/etc/passwd"}, "app", 0},
		{"estiba", []string{"rm", "-f", "idm"}, "idm", 0},
	})
	if _, err := os.Stat(upper); !os.IsNotExist(err) {
		t.Errorf("upper layer %s left after rm: %v", upper, err)
	}
	if _, err := os.Stat(filepath.Join(e.work, "data", "containers", id)); !os.IsNotExist(err) {
		t.Errorf("container dir left after rm: %v", err)
	}
}

func mustRun(t *testing.T, e *e2e, args ...string) string {
	t.Helper()
	out, errs, code := e.estiba(args...)
	if code != 0 {
		t.Fatalf("estiba %v: exit %d: %s%s", args, code, out, errs)
	}
	return out
}

// upperDir reads, from the mount table at mountinfo, the upperdir of the
// overlay mounted on target.
func upperDir(t *testing.T, mountinfo, target string) string {
	t.Helper()
	f, err := os.Open(mountinfo)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[4] != target {
			continue
		}
		for _, o := range strings.Split(fields[len(fields)-1], ",") {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				return v
			}
		}
	}
	t.Fatalf("no overlay with an upperdir on %s", target)
	return ""
}

// restartDaemon kills the daemon with SIGKILL (found as the peer of its
// socket: no name matching) and starts another on the same roots.
func (e *e2e) restartDaemon(t *testing.T) {
	t.Helper()
	sock := strings.TrimPrefix(e.host, "unix://")
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := c.(*net.UnixConn).SyscallConn()
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(int(cred.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(sock)
	d := exec.Command(e.bin, "daemon", "-H", e.host, "--data-root", filepath.Join(e.work, "data"),
		"--exec-root", filepath.Join(e.work, "run"), "--config-file", "/dev/null")
	logf, _ := os.OpenFile(filepath.Join(e.work, "daemon.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	d.Stderr = logf
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The harness's cleanup runs after ours and needs no daemon: this
		// test removes its containers itself.
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
		logf.Close()
	})
	waitSocket(t, sock)
}

// TestE2ESharedMasks: containers' masked directories and their read-only
// /sys/fs/cgroup base (cgroup v1) are binds of one read-only tmpfs that
// the spawner holds (rootfs.SharedDirs), not a tmpfs each, and a
// container cannot write to it.
func TestE2ESharedMasks(t *testing.T) {
	e := startE2E(t)
	e.steps([]step{{"estiba", []string{"import", busyboxTar(t, e.work), "e2e/sm"}, "sha256:", 0}})
	devs := map[string]bool{}
	for _, name := range []string{"sm1", "sm2"} {
		e.steps([]step{{"estiba", []string{"run", "-d", "--name", name, "e2e/sm", "sleep", "60"}, "", 0}})
		pid := strings.TrimSpace(mustRun(t, e, "inspect", "-f", "{{.State.Pid}}", name))
		b, err := os.ReadFile("/proc/" + pid + "/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 10 || (f[4] != "/sys/firmware" && f[4] != "/proc/acpi" && f[4] != "/sys/fs/cgroup") {
				continue
			}
			if f[4] == "/sys/fs/cgroup" && f[len(f)-3] == "cgroup2" {
				continue // a cgroup v2 host: no base to share
			}
			if want := map[bool]string{true: "/cgroup", false: "/empty"}[f[4] == "/sys/fs/cgroup"]; f[3] != want {
				t.Errorf("%s: %s is %q of its file system, want %s: %s", name, f[4], f[3], want, l)
			}
			devs[f[2]] = true
		}
		_, errs, code := e.estiba("exec", name, "mkdir", "/sys/firmware/x")
		if code == 0 || !strings.Contains(errs, "Read-only file system") {
			t.Errorf("%s: mkdir in a mask: exit %d, %q; want a read-only file system", name, code, errs)
		}
	}
	if len(devs) != 1 {
		t.Errorf("masks on %d file systems (%v), want the one shared", len(devs), devs)
	}
}
