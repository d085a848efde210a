package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cwdProbe prints the process's cwd as the kernel sees it and tries to
// read the host marker through it with a path that climbs out.
func cwdProbe(marker string) string {
	return `echo "CWD=$(readlink /proc/self/cwd)"
cat ../../../../../../../../..` + marker + ` 2>/dev/null && echo LEAKED
true`
}

// hostMarker writes a file on the host, outside the bundle, that no
// container may read.
func hostMarker(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(p, []byte("host-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkCwd fails t if the probe's output shows a cwd outside the container
// or the host marker's content.
func checkCwd(t *testing.T, what string, r result) {
	t.Helper()
	if strings.Contains(r.stdout, "LEAKED") || strings.Contains(r.stdout, "host-secret") {
		t.Errorf("CVE-2024-21626 (%s): host file read through the cwd:\n%s", what, r)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		cwd, ok := strings.CutPrefix(l, "CWD=")
		if !ok {
			continue
		}
		// Inside the container the kernel prints paths relative to its
		// root; a cwd outside it prints as a host path or unreachable.
		if !strings.HasPrefix(cwd, "/") || strings.Contains(cwd, "(unreachable)") || strings.HasPrefix(cwd, "/tmp/") || strings.HasPrefix(cwd, "/run/") {
			t.Errorf("CVE-2024-21626 (%s): cwd outside the container: %q", what, cwd)
		}
	}
}

// TestLeakedFdCwd (CVE-2024-21626): process.cwd naming /proc/self/fd/N
// must not give the process a cwd outside the root through an fd the
// runtime leaked. Run must fail or the cwd must be inside.
func TestLeakedFdCwd(t *testing.T) {
	for _, cwd := range []string{"/proc/self/fd/3", "/proc/self/fd/4", "/proc/self/fd/5", "/proc/self/fd/7", "/proc/self/fd/8", "/proc/self/cwd", "/proc/1/cwd", "/proc/self/fd/3/../../../.."} {
		t.Run(strings.ReplaceAll(cwd, "/", "_"), func(t *testing.T) {
			marker := hostMarker(t)
			e := newEnv(t, "sh", "-c", cwdProbe(marker))
			e.spec.Process.Cwd = cwd
			r, err := e.runContainer()
			if err != nil {
				t.Logf("run refused (safe): %v: %s", err, strings.TrimSpace(r.stderr))
				return
			}
			checkCwd(t, "run", r)
		})
	}
}

// TestLeakedFdCwdExec is TestLeakedFdCwd for `exec --cwd`.
func TestLeakedFdCwdExec(t *testing.T) {
	marker := hostMarker(t)
	e := newEnv(t, "sleep", "30")
	e.create()
	e.run(nil, "start", e.id)
	for _, cwd := range []string{"/proc/self/fd/3", "/proc/self/fd/4", "/proc/self/fd/5", "/proc/self/fd/7", "/proc/1/cwd", "/proc/self/fd/3/../../../.."} {
		r, err := e.execFlags([]string{"--cwd", cwd}, "sh", "-c", cwdProbe(marker))
		if err != nil {
			t.Logf("exec --cwd %s refused (safe): %v: %s", cwd, err, strings.TrimSpace(r.stderr))
			continue
		}
		checkCwd(t, "exec --cwd "+cwd, r)
	}
	e.delete()
}

// fdList lists pid's open fds with ls -l (parsed by checkFds). ls runs
// as a child, so the shell ($$) holds no extra fd meanwhile (a glob, pipe
// or $(...) would open one).
func fdList(pid string) string {
	return `ls -l /proc/` + pid + `/fd`
}

// lsFd parses one `ls -l /proc/N/fd` line into fd and target.
func lsFd(line string) (fd, target string, ok bool) {
	left, target, ok := strings.Cut(line, " -> ")
	if !ok {
		return "", "", false
	}
	f := strings.Fields(left)
	return f[len(f)-1], target, true
}

// checkFds fails t if the listing holds an fd other than allowed or one
// pointing at a host path.
func checkFds(t *testing.T, what, out string, allowed map[string]bool) {
	t.Helper()
	n := 0
	for _, l := range strings.Split(out, "\n") {
		fd, target, ok := lsFd(l)
		if !ok {
			continue
		}
		n++
		if !allowed[fd] {
			t.Errorf("CVE-2024-21626 (%s): fd %s leaked into the container: -> %q", what, fd, target)
		}
		if hostPath(target) {
			t.Errorf("CVE-2024-21626 (%s): fd %s points at a host path %q", what, fd, target)
		}
	}
	if n == 0 {
		t.Errorf("%s: no fd listed: %q", what, out)
	}
}

// hostPath reports whether an fd target names something outside the
// container: its stdio is /dev/null or pipes from the test.
func hostPath(target string) bool {
	switch {
	case target == "/dev/null", strings.HasPrefix(target, "pipe:"), strings.HasPrefix(target, "socket:"),
		strings.HasPrefix(target, "/dev/pts/"), target == "/dev/console",
		// The stdio files the test gave `create`: the caller's choice.
		strings.HasSuffix(target, "/create.out"), strings.HasSuffix(target, "/create.err"):
		return false
	}
	return true
}

var stdio = map[string]bool{"0": true, "1": true, "2": true}

// TestNoLeakedFds (CVE-2024-21626): the container's PID 1 and an exec'd
// process hold only fds 0, 1, 2, none pointing at a host path. PID 1 is
// sleep, which opens nothing itself.
func TestNoLeakedFds(t *testing.T) {
	e := newEnv(t, "sleep", "30")
	e.create()
	e.run(nil, "start", e.id)
	r, err := e.exec("sh", "-c", fdList("1"))
	if err != nil {
		t.Fatalf("list PID 1 fds: %s", r)
	}
	checkFds(t, "PID 1", r.stdout, stdio)
	r, err = e.exec("sh", "-c", fdList("$$"))
	if err != nil {
		t.Fatalf("list exec fds: %s", r)
	}
	checkFds(t, "exec", r.stdout, stdio)
	e.delete()
}

// createdInitProbe tries to re-open for writing every fd of PID 1 that
// names a regular file (not a FIFO: opening one for writing would block
// on the runtime's exec.fifo), and prints "WRITABLE fd -> target".
const createdInitProbe = `
cd /proc/1/fd || exit 1
for f in *; do
  t=$(readlink $f) || continue
  case "$t" in /dev/null|*/create.out|*/create.err|pipe:*|socket:*|anon_inode:*) continue;; esac
  [ -f $f ] || continue
  if { true >> /proc/1/fd/$f; } 2>/dev/null; then echo "WRITABLE $f -> $t"; fi
done
true`

// TestCreatedInitFds (CVE-2024-21626, created state): between create and
// start PID 1 is the runtime's init, and a process exec'd into the
// container can reach its fds through /proc/1/fd. None of them may re-open
// a host file for writing — a host cgroup file reached this way bypasses
// the read-only /sys/fs/cgroup and lifts the container's own limits.
func TestCreatedInitFds(t *testing.T) {
	e := newEnv(t, "sleep", "30")
	e.create()
	r, err := e.exec("sh", "-c", fdList("1")+"; "+createdInitProbe)
	e.delete()
	if err != nil {
		t.Logf("exec into created container refused (safe): %s", r)
		return
	}
	t.Logf("created init fds:\n%s", r.stdout)
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "WRITABLE ") {
			t.Errorf("created init leaks a writable host file to exec'd processes: %s", l)
		}
	}
}

// TestPreserveFds: --preserve-fds 1 passes exactly fd 3 to the container.
func TestPreserveFds(t *testing.T) {
	e := newEnv(t, "sh", "-c", fdList("$$"))
	e.writeSpec()
	extra, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	r, err := e.tryFiles([]*os.File{extra}, "run", "--preserve-fds", "1", "--bundle", e.bundle, e.id)
	if err != nil {
		t.Fatalf("run --preserve-fds 1: %s", r)
	}
	checkFds(t, "preserve-fds", r.stdout, map[string]bool{"0": true, "1": true, "2": true, "3": true})
	if !strings.Contains(r.stdout, " 3 -> ") {
		t.Errorf("--preserve-fds 1: fd 3 not passed:\n%s", r.stdout)
	}
}

// TestCreatedInitFifo: a process exec'd into a created container must not
// be able to start it behind the runtime's back by reading the exec fifo
// through the init's fd (/proc/1/fd/N -> .../exec.fifo): start hooks and
// the state would be bypassed.
func TestCreatedInitFifo(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo STARTED; sleep 30")
	e.create()
	r, _ := e.exec("sh", "-c", `cd /proc/1/fd && for f in *; do case "$(readlink $f)" in *exec.fifo) timeout 2 cat $f >/dev/null 2>&1 && echo READ-FIFO;; esac; done; true`)
	time.Sleep(500 * time.Millisecond)
	out, _ := os.ReadFile(filepath.Join(filepath.Dir(e.bundle), "create.out"))
	e.delete()
	if strings.Contains(string(out), "STARTED") {
		t.Errorf("the container's process ran without start (exec'd probe: %q)", r.stdout)
	}
}
