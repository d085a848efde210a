package container

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// usernsSpec gives s its own user namespace mapped as the engine's
// --userns=auto does.
func usernsSpec(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.Resources = nil
	// sysfs needs a network namespace owned by the user namespace.
	s.Mounts = s.Mounts[:5]
}

// startSleeper runs a container doing nothing, stopped at the test's end.
func startSleeper(t *testing.T, r *Runtime, mutate func(*specs.Spec)) string {
	t.Helper()
	id := uniqueID(t)
	c, err := r.Run(id, bundle(t, []string{"sleep", "100"}, mutate), CreateOptions{})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Delete(id, true); c.Wait() })
	return id
}

// execOut runs args in container id and returns its exit code and output.
func execOut(t *testing.T, r *Runtime, id string, args ...string) (int, string) {
	t.Helper()
	out := outFile(t)
	p := &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
	e, err := r.Exec(id, p, ExecOptions{Stdio: Stdio{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatalf("%v: %s", err, readOut(t, out))
	}
	code, _ := e.Wait()
	return code, readOut(t, out)
}

func TestExecUserNamespace(t *testing.T) {
	r := newRuntime(t)
	id := startSleeper(t, r, usernsSpec)
	code, out := execOut(t, r, id, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; echo $$; ls /proc/self/fd")
	if code != 0 {
		t.Fatalf("exec exit %d: %s", code, out)
	}
	f := strings.Fields(out)
	if len(f) < 9 || f[0] != "0" || f[1] != "0" || f[2] != "0" || f[3] != "100000" || f[4] != "65536" || f[5] != "0" || f[6] != "100000" {
		t.Fatalf("exec output %q: want uid/gid 0 and the 0->100000 mappings", out)
	}
	if f[8] == "1" {
		t.Fatalf("exec'd process is pid 1: not in the container's pid namespace")
	}
	// Stdio and the fd ls opens: no runtime or trampoline fd leaks.
	if fds := f[9:]; len(fds) > 4 {
		t.Fatalf("exec'd process has fds %v: runtime fds leaked", fds)
	}
	// Same namespaces as the container's init.
	pid, err := r.State(id)
	if err != nil {
		t.Fatal(err)
	}
	_, out = execOut(t, r, id, "sh", "-c", "for n in user mnt pid; do readlink /proc/self/ns/$n; done")
	for i, ns := range []string{"user", "mnt", "pid"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid.Pid, ns))
		if got := strings.Fields(out); len(got) != 3 || got[i] != want {
			t.Errorf("exec'd %s namespace: %q, want %q", ns, out, want)
		}
	}
}

// An exec'd process as a non-root user of the container keeps the
// container's ids (mapped), not the trampoline's.
func TestExecUserNamespaceNonRoot(t *testing.T) {
	r := newRuntime(t)
	id := startSleeper(t, r, usernsSpec)
	out := outFile(t)
	p := &specs.Process{Args: []string{"sh", "-c", "id -u; id -G"}, Cwd: "/", Env: []string{"PATH=/bin"}, User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000}}}
	e, err := r.Exec(id, p, ExecOptions{Stdio: Stdio{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := e.Wait(); code != 0 || strings.Join(strings.Fields(readOut(t, out)), " ") != "1000 1000 2000" {
		t.Fatalf("exec exit %d: %q, want uid 1000, groups 1000 2000", code, readOut(t, out))
	}
}

func TestExecTimeNamespace(t *testing.T) {
	r := newRuntime(t)
	id := startSleeper(t, r, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10 * 86400}}
	})
	code, out := execOut(t, r, id, "cat", "/proc/self/timens_offsets")
	if code != 0 || !strings.Contains(out, "boottime") || !strings.Contains(out, "864000") {
		t.Fatalf("exec exit %d, timens_offsets %q: want the boottime offset", code, out)
	}
}

func TestExecUserAndTimeNamespace(t *testing.T) {
	r := newRuntime(t)
	id := startSleeper(t, r, func(s *specs.Spec) {
		usernsSpec(s)
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 86400}}
	})
	code, out := execOut(t, r, id, "sh", "-c", "id -u; cat /proc/self/timens_offsets")
	if code != 0 || !strings.HasPrefix(out, "0\n") || !strings.Contains(out, "86400") {
		t.Fatalf("exec exit %d: %q", code, out)
	}
}

func TestExecUserNamespaceTerminal(t *testing.T) {
	r := newRuntime(t)
	id := startSleeper(t, r, usernsSpec)
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	master := make(chan *os.File, 1)
	go func() { master <- acceptPty(l) }()
	p := &specs.Process{Args: []string{"sh", "-c", "test -t 0 && test -t 1 && echo tty-ok $(id -u)"}, Cwd: "/", Env: []string{"PATH=/bin"}, Terminal: true}
	e, err := r.Exec(id, p, ExecOptions{ConsoleSocket: sockPath})
	if err != nil {
		t.Fatal(err)
	}
	m := <-master
	if m == nil {
		e.Wait()
		t.Fatal("no pty master received")
	}
	defer m.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, m); close(done) }()
	e.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	if !strings.Contains(out.String(), "tty-ok 0") {
		t.Fatalf("console output %q", out.String())
	}
}

// acceptPty receives the pty master sent over the console socket.
func acceptPty(l *net.UnixListener) *os.File {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil
	}
	defer c.Close()
	buf, oob := make([]byte, 256), make([]byte, 64)
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil
	}
	fds, _ := unix.ParseUnixRights(&msgs[0])
	return os.NewFile(uintptr(fds[0]), "pty-master")
}
