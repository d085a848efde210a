package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withUserns gives the container its own user namespace mapped as the
// engine's --userns=auto does, and lets the mapped root reach the bundle.
func (e *env) withUserns() {
	e.t.Helper()
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// The mapped root resolves bind sources on the host: t.TempDir()
	// is 0700.
	for _, d := range []string{filepath.Dir(e.bundle), filepath.Dir(filepath.Dir(e.bundle)), e.bundle} {
		if err := os.Chmod(d, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestExeOverwriteDuringExecUserns is TestExeOverwriteDuringExec for a
// container with its own user namespace, where exec goes through the
// runtime's raw-fork trampoline: init's binary may not be opened for
// writing by the container's root while the exec chain runs.
func TestExeOverwriteDuringExecUserns(t *testing.T) {
	e := newEnv(t, "sh", "-c", hunter)
	e.withUserns()
	e.addTmpfs("/tmp")
	out := e.addOut()
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.rootfs, "bin/evil"), []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.create()
	e.run(nil, "start", e.id)
	r, err := e.exec("cat", "/proc/self/uid_map")
	if err != nil || !strings.Contains(r.stdout, "100000") {
		t.Fatalf("exec into the user namespace: %v: %s", err, r)
	}
	for i := 0; i < 15; i++ {
		_, _ = e.exec("/bin/evil")
		_, _ = e.exec("sleep", "0.05")
	}
	e.run(nil, "exec", e.id, "touch", "/tmp/stop")
	waitFile(t, filepath.Join(out, "rounds"), 20*time.Second)
	e.delete()
	rounds, _ := os.ReadFile(filepath.Join(out, "rounds"))
	seen, _ := os.ReadFile(filepath.Join(out, "seen"))
	t.Logf("hunter rounds: %s; exe targets seen:\n%s", strings.TrimSpace(string(rounds)), seen)
	if b, err := os.ReadFile(filepath.Join(out, "opened")); err == nil {
		t.Errorf("CVE-2019-5736: the container opened an executable for writing:\n%s", b)
	}
}

// TestNoLeakedFdsExecUserns: a process exec'd into a container with its
// own user namespace holds only its stdio (no namespace, binary or sync fd
// of the runtime or its trampoline).
func TestNoLeakedFdsExecUserns(t *testing.T) {
	e := newEnv(t, "sleep", "30")
	e.withUserns()
	e.create()
	e.run(nil, "start", e.id)
	r, err := e.exec("sh", "-c", fdList("$$"))
	e.delete()
	if err != nil {
		t.Fatalf("list exec fds: %s", r)
	}
	checkFds(t, "exec", r.stdout, stdio)
}
