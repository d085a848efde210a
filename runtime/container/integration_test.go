package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/initproc"
	"github.com/estiba/estiba/runtime/specgen"
)

// The test binary doubles as the container's init, as the runtime binary
// does: the runtime re-execs it with "init".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == initproc.Arg {
		initproc.Main("")
		return
	}
	code := m.Run()
	testutil.CleanupStub()
	os.Exit(code)
}

// testExe is a copy of the test binary that a container's mapped root can
// execute (go test's build dir is private to the host's root).
func testExe(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	dst := filepath.Join(dir, "init")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// newRuntime returns a Runtime with a temp root, and checks at the end of the
// test that it left no state, mount, cgroup or process behind.
func newRuntime(t *testing.T) *Runtime {
	t.Helper()
	testutil.RequiresRoot(t)
	checkNoNewMounts(t)
	r := &Runtime{Root: filepath.Join(t.TempDir(), "state"), Exe: testExe(t), Warn: func(m string) { t.Log("warning:", m) }}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(r.Root)
		for _, e := range ents {
			t.Errorf("state left behind: %s", e.Name())
		}
	})
	return r
}

// bundle builds a busybox rootfs and a config.json running args.
func bundle(t *testing.T, args []string, mutate func(*specs.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "true", "false", "sleep", "cat", "ls", "echo", "id", "hostname", "readlink", "stat", "grep"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	s := specgen.Default(false)
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root.Readonly = false
	if mutate != nil {
		mutate(s)
	}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func uniqueID(t *testing.T) string {
	return fmt.Sprintf("estiba-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
}

// skipIfUnbuilt skips while a package this one calls is still a stub.
func skipIfUnbuilt(t *testing.T, err error) {
	if err != nil && strings.Contains(err.Error(), "not implemented") {
		t.Skipf("dependency not built yet: %v", err)
	}
}

// run runs a container to completion and returns its exit code and output.
func run(t *testing.T, r *Runtime, b string) (int, string) {
	t.Helper()
	out := outFile(t)
	id := uniqueID(t)
	c, err := r.Run(id, b, CreateOptions{Stdio: Stdio{Stdout: out, Stderr: out}})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	code, err := c.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(id, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	return code, readOut(t, out)
}

func outFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readOut(t *testing.T, f *os.File) string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunExitCodes(t *testing.T) {
	r := newRuntime(t)
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"true"}, 0, ""},
		{[]string{"sh", "-c", "exit 7"}, 7, ""},
		{[]string{"sh", "-c", "echo $$ $(hostname)"}, 0, "1 estiba\n"},
		{[]string{"sh", "-c", "sleep 100 & kill -9 $!; wait $!"}, 137, "Killed\n"},
	}
	for _, tt := range tests {
		code, out := run(t, r, bundle(t, tt.args, nil))
		if code != tt.code || out != tt.out {
			t.Errorf("%v: code %d out %q, want %d %q", tt.args, code, out, tt.code, tt.out)
		}
	}
}

func TestNamespacesAreNew(t *testing.T) {
	r := newRuntime(t)
	code, out := run(t, r, bundle(t, []string{"sh", "-c", "for n in pid net mnt uts ipc cgroup; do readlink /proc/self/ns/$n; done"}, nil))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, line := range strings.Fields(out) {
		typ := strings.SplitN(line, ":", 2)[0]
		host, _ := os.Readlink("/proc/self/ns/" + typ)
		if line == host {
			t.Errorf("container shares the host's %s namespace", typ)
		}
	}
}

func TestUserNamespaceMapping(t *testing.T) {
	r := newRuntime(t)
	b := bundle(t, []string{"cat", "/proc/self/uid_map", "/proc/self/gid_map"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.Resources = nil
		// sysfs needs a network namespace owned by the user namespace.
		s.Mounts = s.Mounts[:5]
	})
	code, out := run(t, r, b)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if f := strings.Fields(out); len(f) != 6 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
		t.Fatalf("uid_map/gid_map = %q", out)
	}
}

func TestLifecycle(t *testing.T) {
	r := newRuntime(t)
	id := uniqueID(t)
	b := bundle(t, []string{"sleep", "100"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"a": "b"}
	})
	c, err := r.Create(id, b, CreateOptions{})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.State(id)
	if err != nil || st.Status != specs.StateCreated || st.Pid != c.Process.Pid || st.Annotations["a"] != "b" || st.Bundle != b {
		t.Fatalf("state after create = %+v, %v", st, err)
	}
	if _, err := r.Create(id, b, CreateOptions{}); !errors.Is(err, ErrExist) {
		t.Fatalf("second create: %v, want ErrExist", err)
	}
	if err := r.Start(id); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State(id); st.Status != specs.StateRunning {
		t.Fatalf("status after start = %s", st.Status)
	}
	if err := r.Start(id); !errors.Is(err, ErrState) {
		t.Fatalf("second start: %v, want ErrState", err)
	}
	if err := r.Delete(id, false); !errors.Is(err, ErrState) {
		t.Fatalf("delete of running: %v, want ErrState", err)
	}
	if err := r.Kill(id, unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.Wait(); code != 137 {
		t.Fatalf("exit code after SIGKILL = %d", code)
	}
	if st, _ := r.State(id); st.Status != specs.StateStopped {
		t.Fatalf("status after kill = %s", st.Status)
	}
	if err := r.Kill(id, unix.SIGKILL, false); !errors.Is(err, ErrState) {
		t.Fatalf("kill of stopped: %v", err)
	}
	if err := r.Delete(id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.State(id); !errors.Is(err, ErrNotExist) {
		t.Fatalf("state after delete: %v", err)
	}
}

func TestDeleteForce(t *testing.T) {
	r := newRuntime(t)
	id := uniqueID(t)
	c, err := r.Run(id, bundle(t, []string{"sh", "-c", "sleep 100 & sleep 100"}, nil), CreateOptions{})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Delete(id, true); c.Wait() }()
	var pids []int
	for i := 0; i < 100 && len(pids) < 2; i++ {
		time.Sleep(10 * time.Millisecond)
		if pids, err = r.Pids(id); err != nil {
			t.Fatal(err)
		}
	}
	if len(pids) < 2 {
		t.Fatalf("pids = %v", pids)
	}
	if err := r.Delete(id, true); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	for _, p := range pids {
		if unix.Kill(p, 0) == nil {
			if _, st, _ := procStat(p); st != 'Z' {
				t.Errorf("pid %d survived delete --force", p)
			}
		}
	}
}

// A failed create must leave nothing: no state dir (newRuntime checks), no
// mount (CheckNoNewMounts), no cgroup, no process.
func TestFailedCreateLeavesNothing(t *testing.T) {
	r := newRuntime(t)
	cases := map[string]func(*specs.Spec){
		"bad mount": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/nonexistent/estiba", Options: []string{"bind"}})
		},
		"failing createRuntime hook": func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
		},
		"bad cwd": func(s *specs.Spec) { s.Process.Cwd = "/nonexistent" },
		"missing binary": func(s *specs.Spec) {
			s.Process.Args = []string{"nonexistent"}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			id := uniqueID(t)
			before := children(t)
			_, err := r.Create(id, bundle(t, []string{"true"}, mutate), CreateOptions{})
			skipIfUnbuilt(t, err)
			if err == nil {
				r.Delete(id, true)
				t.Fatal("create succeeded")
			}
			t.Logf("error (expected): %v", err)
			if _, err := os.Stat(filepath.Join(r.Root, id)); err == nil {
				t.Error("state dir left")
			}
			if cg := findCgroup(id); cg != "" {
				t.Errorf("cgroup left: %s", cg)
			}
			if after := children(t); after > before {
				t.Errorf("child processes: %d before, %d after", before, after)
			}
		})
	}
}

func children(t *testing.T) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/children", os.Getpid()))
	if err != nil {
		return 0
	}
	return len(strings.Fields(string(b)))
}

func findCgroup(id string) string {
	var found string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		if d.IsDir() && strings.Contains(d.Name(), id) {
			found = p
			return filepath.SkipDir
		}
		if d.IsDir() && strings.Count(p, "/") > 6 {
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

func TestHooks(t *testing.T) {
	r := newRuntime(t)
	out := filepath.Join(t.TempDir(), "hooks")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "read s; echo " + name + " >> " + out + "; echo \"$s\" >> " + out + ".json"}}
	}
	id := uniqueID(t)
	b := bundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{hook("createRuntime")},
			Poststart:     []specs.Hook{hook("poststart")},
			Poststop:      []specs.Hook{hook("poststop"), {Path: "/bin/false"}},
		}
	})
	c, err := r.Run(id, b, CreateOptions{})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if err := r.Delete(id, false); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if string(got) != "createRuntime\npoststart\npoststop\n" {
		t.Fatalf("hooks ran: %q", got)
	}
	states, _ := os.ReadFile(out + ".json")
	for _, line := range strings.Split(strings.TrimSpace(string(states)), "\n") {
		var st specs.State
		if err := json.Unmarshal([]byte(line), &st); err != nil || st.ID != id || st.Bundle != b {
			t.Errorf("hook state %q: %v", line, err)
		}
	}
}

func TestExec(t *testing.T) {
	r := newRuntime(t)
	id := uniqueID(t)
	c, err := r.Run(id, bundle(t, []string{"sleep", "100"}, nil), CreateOptions{})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Delete(id, true); c.Wait() }()
	out := outFile(t)
	p := &specs.Process{Args: []string{"sh", "-c", "echo $$ $(hostname) $FOO; pwd; ls /proc/self/fd"}, Cwd: "/tmp", Env: []string{"FOO=bar", "PATH=/bin"}}
	e, err := r.Exec(id, p, ExecOptions{Stdio: Stdio{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := e.Wait(); code != 0 {
		t.Fatalf("exec exit %d: %s", code, readOut(t, out))
	}
	got := strings.Fields(readOut(t, out))
	// pid > 1 in the container's pid namespace; the exec'd process sees
	// only stdio and the fd ls opens.
	if len(got) < 4 || got[0] == "1" || got[1] != "estiba" || got[2] != "bar" || got[3] != "/tmp" {
		t.Fatalf("exec output %q", got)
	}
	if fds := got[4:]; len(fds) > 4 {
		t.Fatalf("exec'd process has fds %v: runtime fds leaked", fds)
	}
}

// CVE-2024-21626: no runtime fd reaches the container, and a cwd that would
// lead out of the root through one is refused.
func TestNoFdLeak(t *testing.T) {
	r := newRuntime(t)
	code, out := run(t, r, bundle(t, []string{"ls", "/proc/self/fd"}, nil))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	// 0, 1, 2 and the directory ls is reading.
	if fds := strings.Fields(out); len(fds) != 4 {
		t.Fatalf("container fds %v: runtime fds leaked", fds)
	}
	// A cwd through any fd init might hold must either fail or land
	// inside the root.
	for fd := 3; fd < 12; fd++ {
		b := bundle(t, []string{"sh", "-c", "pwd"}, func(s *specs.Spec) { s.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd) })
		id := uniqueID(t)
		out := outFile(t)
		c, err := r.Run(id, b, CreateOptions{Stdio: Stdio{Stdout: out, Stderr: out}})
		skipIfUnbuilt(t, err)
		if err != nil {
			continue
		}
		c.Wait()
		r.Delete(id, true)
		if got := readOut(t, out); !strings.HasPrefix(got, "/") {
			t.Fatalf("cwd /proc/self/fd/%d: container runs in %q, outside its root", fd, got)
		}
	}
}

// TestStdioAtAnyFd: the fd of init's binary survives the child's fd
// shuffling whatever the numbers of the fds passed to it (see exeFloor).
// They used to be able to sit just below it: the child then parked its exec
// status pipe on the binary's fd, and execve failed with EACCES.
func TestStdioAtAnyFd(t *testing.T) {
	r := newRuntime(t)
	b := bundle(t, []string{"true"}, nil)
	out := outFile(t)
	for n := 10; n < 48; n++ {
		if _, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0); err == nil {
			continue // in use
		}
		if err := unix.Dup3(int(out.Fd()), n, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(n), "stdout")
		id := uniqueID(t)
		c, err := r.Run(id, b, CreateOptions{Stdio: Stdio{Stdout: f, Stderr: f}})
		skipIfUnbuilt(t, err)
		f.Close()
		if err != nil {
			t.Fatalf("stdout at fd %d: %v", n, err)
		}
		c.Wait()
		if err := r.Delete(id, false); err != nil {
			t.Fatal(err)
		}
	}
}

// CVE-2019-5736: the container cannot open its init's binary for writing,
// and making that so leaves no mount behind on the host.
func TestInitBinaryReadOnly(t *testing.T) {
	testutil.CheckNoNewMounts(t)
	r := newRuntime(t)
	r.Exe = ""
	exe, release, err := r.initExe(r.Exe, 0)
	if err != nil {
		t.Fatal(err)
	}
	// EROFS, or ETXTBSY first while the binary runs (it is this test).
	if _, err := os.OpenFile(exe, os.O_WRONLY, 0); !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.ETXTBSY) {
		t.Fatalf("open init binary for writing: %v, want EROFS", err)
	}
	if !exeIsReadOnly(exe) {
		t.Fatal("init binary not on a read-only mount")
	}
	release()
	id := uniqueID(t)
	c, err := r.Create(id, bundle(t, []string{"true"}, nil), CreateOptions{})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Delete(id, true); c.Wait() }()
	// While init waits for start, its exe link is the runtime binary.
	exeLink := fmt.Sprintf("/proc/%d/exe", c.Process.Pid)
	if _, err := os.OpenFile(exeLink, os.O_WRONLY, 0); err == nil {
		t.Fatal("init binary writable through /proc/<init>/exe")
	}
	if !exeIsReadOnly(exeLink) {
		t.Fatal("init's exe is not on a read-only mount")
	}
}

func TestConsoleSocket(t *testing.T) {
	r := newRuntime(t)
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	master := make(chan *os.File, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			master <- nil
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 256), make([]byte, 64)
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			master <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		master <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	id := uniqueID(t)
	b := bundle(t, []string{"sh", "-c", "test -t 0 && test -t 1 && echo tty-ok"}, func(s *specs.Spec) { s.Process.Terminal = true })
	c, err := r.Run(id, b, CreateOptions{ConsoleSocket: sockPath})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatal(err)
	}
	m := <-master
	if m == nil {
		t.Fatal("no pty master received")
	}
	defer m.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, m); close(done) }()
	c.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	r.Delete(id, true)
	if !strings.Contains(out.String(), "tty-ok") {
		t.Fatalf("console output %q", out.String())
	}
}

func TestKillAllAndPause(t *testing.T) {
	r := newRuntime(t)
	id := uniqueID(t)
	c, err := r.Run(id, bundle(t, []string{"sh", "-c", "sleep 100 & sleep 100 & wait"}, nil), CreateOptions{})
	skipIfUnbuilt(t, err)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Delete(id, true); c.Wait() }()
	// Pause once the shell has started both children: a vforking
	// parent cannot be frozen on cgroup v1.
	for i := 0; i < 100; i++ {
		if pids, _ := r.Pids(id); len(pids) >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if err := r.Pause(id); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State(id); st.Status != "paused" {
		t.Fatalf("status after pause = %s", st.Status)
	}
	if err := r.Resume(id); err != nil {
		t.Fatal(err)
	}
	if err := r.Kill(id, unix.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.Wait(); code != 137 {
		t.Fatalf("exit after kill --all: %d", code)
	}
	if err := r.Delete(id, false); err != nil {
		t.Fatal(err)
	}
}

var _ = exec.Command

// checkNoNewMounts is testutil.CheckNoNewMounts restricted to mounts of this
// test (its temp dirs) or of the runtime (paths naming estiba): other
// packages' tests may mount elsewhere meanwhile.
func checkNoNewMounts(t *testing.T) {
	before := testutil.Mounts(t)
	name := strings.NewReplacer("/", "_").Replace(t.Name())
	t.Cleanup(func() {
		for m := range testutil.Mounts(t) {
			if !before[m] && (strings.Contains(m, name) || strings.Contains(m, "estiba")) {
				t.Errorf("mount leaked: %s", m)
			}
		}
	})
}

func TestTimeNamespaceOffsets(t *testing.T) {
	r := newRuntime(t)
	b := bundle(t, []string{"cat", "/proc/uptime"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10 * 86400}}
	})
	code, out := run(t, r, b)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	var up float64
	fmt.Sscan(out, &up)
	if up < 10*86400 {
		t.Fatalf("uptime in the container %q: boottime offset not applied", out)
	}
}

func TestJoinNetworkNamespaceByPath(t *testing.T) {
	r := newRuntime(t)
	self, _ := os.Readlink("/proc/self/ns/net")
	b := bundle(t, []string{"readlink", "/proc/self/ns/net"}, func(s *specs.Spec) {
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = "/proc/self/ns/net"
			}
		}
	})
	code, out := run(t, r, b)
	if code != 0 || strings.TrimSpace(out) != self {
		t.Fatalf("exit %d, net ns %q, want the runtime's %q", code, out, self)
	}
}

// Without a pid namespace, a process left by the container after init
// exits must not keep delete from removing the cgroup.
func TestDeleteKillsLeftoversWithoutPidNS(t *testing.T) {
	r := newRuntime(t)
	id := uniqueID(t)
	b := bundle(t, []string{"sh", "-c", "sleep 100 >/dev/null 2>&1 &"}, func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	})
	c, err := r.Run(id, b, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Wait()
	var pids []int
	for i := 0; i < 100 && len(pids) == 0; i++ {
		pids, _ = r.Pids(id)
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) == 0 {
		t.Fatal("the background sleep is not in the cgroup")
	}
	if err := r.Delete(id, false); err != nil {
		t.Fatal(err)
	}
	if cg := findCgroup(id); cg != "" {
		t.Fatalf("cgroup left: %s", cg)
	}
}

// TestBundleSpec: with BundleSpec the state directory keeps no spec.json;
// Spec reads the bundle's config.json, and Update rewrites it there.
func TestBundleSpec(t *testing.T) {
	r := newRuntime(t)
	r.BundleSpec = true
	id := uniqueID(t)
	b := bundle(t, []string{"sleep", "100"}, func(s *specs.Spec) { s.Hostname = "bundlespec" })
	c, err := r.Create(id, b, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r.Kill(id, unix.SIGKILL, false)
		c.Wait()
		if err := r.Delete(id, false); err != nil {
			t.Error(err)
		}
	}()
	if _, err := os.Stat(filepath.Join(r.Root, id, specFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spec.json in the state directory: %v", err)
	}
	if s, err := r.Spec(id); err != nil || s.Hostname != "bundlespec" {
		t.Fatalf("spec: %v, %v", s, err)
	}
	limit := int64(321)
	if err := r.Update(id, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	saved, err := LoadSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	if res := saved.Linux.Resources; res == nil || res.Pids == nil || res.Pids.Limit == nil || *res.Pids.Limit != limit {
		t.Errorf("the bundle's config.json after update: %+v", saved.Linux.Resources)
	}
	if _, err := os.Stat(filepath.Join(r.Root, id, specFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spec.json in the state directory after update: %v", err)
	}
}
