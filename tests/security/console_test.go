package security

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// receivePty accepts one connection on the console socket and returns the
// pty master the runtime sends with SCM_RIGHTS.
func receivePty(l *net.UnixListener) (*os.File, error) {
	_ = l.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	oob := make([]byte, unix.CmsgSpace(4))
	buf := make([]byte, 256)
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.Join(errors.New("no control message with the pty"), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.Join(errors.New("no fd in the control message"), err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// TestConsoleSymlinks (CVE-2025-52565): with process.terminal the runtime
// bind-mounts the pty over /dev/console and uses /dev/ptmx. The image's
// own /dev (no /dev tmpfs in the spec) has both as symlinks to the host's
// core_pattern: following them would bind the pty over, or expose, a
// procfs file. Run must fail or the container must not write
// core_pattern; /dev/console must be the pty.
func TestConsoleSymlinks(t *testing.T) {
	for _, keep := range []string{"no-dev-mounts", "devpts-kept", "default-dev"} {
		t.Run(keep, func(t *testing.T) { _ = consoleSymlinks(t, keep) })
	}
}

// consoleSymlinks runs the probe with a terminal and returns what it
// printed through the pty ("" if run was refused).
func consoleSymlinks(t *testing.T, keep string) string {
	hostProcFile(t, "/proc/sys/kernel/core_pattern")
	e := newEnv(t, "sh", "-c", devSymlinkProbe+`; ls -l /dev/console; grep -E ' /dev/console | /proc/sys' /proc/self/mountinfo`)
	e.spec.Process.Terminal = true
	switch keep {
	case "devpts-kept":
		e.withoutMountExact("/dev")
	case "no-dev-mounts":
		e.withoutMount("/dev")
	}
	for _, l := range []string{"dev/console", "dev/ptmx"} {
		symlink(t, "/proc/sys/kernel/core_pattern", filepath.Join(e.rootfs, l))
	}
	sock := filepath.Join(filepath.Dir(e.bundle), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		pty, err := receivePty(l)
		if err != nil {
			t.Logf("no pty received: %v", err)
			return
		}
		defer pty.Close()
		_ = pty.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _ = io.Copy(&out, pty) // ends with EIO when the container exits
	}()
	r, err := e.runContainer("--console-socket", sock)
	l.Close()
	<-done
	if err != nil {
		t.Logf("run refused (safe): %v: %s", err, strings.TrimSpace(r.stderr))
		return ""
	}
	t.Logf("probe (via pty):\n%s", out.String())
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "WROTE /proc") || strings.HasPrefix(line, "READ ") || strings.HasPrefix(line, "WRITABLE ") {
			t.Errorf("CVE-2025-52565: %s", strings.TrimSpace(line))
		}
	}
	if !strings.Contains(out.String(), "/dev/console") {
		t.Errorf("no probe output through the pty:\n%s", out.String())
	}
	return out.String()
}

// TestConsolePtyMounted: the runtime spec (config-linux, Devices) says
// that with process.terminal the pty is bind-mounted at /dev/console.
func TestConsolePtyMounted(t *testing.T) {
	if out := consoleSymlinks(t, "default-dev"); out != "" && !strings.Contains(out, " /dev/console ") {
		t.Errorf("process.terminal: no pty mounted at /dev/console:\n%s", out)
	}
}

// TestDeniedDeviceNode: a device listed in linux.devices that the device
// cgroup (linux.resources.devices, default spec: deny all) does not allow
// is created but cannot be opened: EPERM, as with runc 1.1.5 here.
func TestDeniedDeviceNode(t *testing.T) {
	e := newEnv(t, "sh", "-c", "ls -l /dev/qamem; head -c 1 /dev/qamem")
	mode := os.FileMode(0o666)
	e.spec.Linux.Devices = append(e.spec.Linux.Devices, specDevice("/dev/qamem", 1, 1, &mode))
	r, err := e.runContainer()
	if err == nil {
		t.Errorf("reading the denied /dev/mem succeeded:\n%s", r)
		return
	}
	if !strings.Contains(r.stderr, "Operation not permitted") || !strings.Contains(r.stdout, "1,   1") {
		t.Errorf("want the node created and its open denied with EPERM:\n%s", r)
	}
}
