package container

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// withUserNS gives s a new user namespace with the container's ids at
// 100000, as the engine's --userns=auto does.
func withUserNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.Resources = nil
}

// allChildren counts our child processes, whichever thread forked them.
func allChildren(t *testing.T) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + e.Name() + "/children")
		n += len(strings.Fields(string(b)))
	}
	return n
}

// nsOwner is the identity of the user namespace that owns the namespace
// file path (ioctl NS_GET_USERNS).
func nsOwner(t *testing.T, path string) string {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		t.Fatalf("NS_GET_USERNS %s: %v", path, err)
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	if err := unix.Fstat(owner, &st); err != nil {
		t.Fatal(err)
	}
	return "user:[" + strconv.FormatUint(st.Ino, 10) + "]"
}

func checkDumpable(t *testing.T) {
	t.Helper()
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 1 {
		t.Errorf("runtime left non-dumpable (%d, %v)", d, err)
	}
}

// A new user namespace goes through the vfork path (vfork.go): the new
// namespaces belong to the container's user namespace, a joined one is
// joined, init has no fd of ours, and the runtime is dumpable again.
func TestVforkUserNS(t *testing.T) {
	if !haveVfork {
		t.Skip("no vfork path on this architecture")
	}
	r := newRuntime(t)
	h := startHolder(t, holderOpts{newNet: true})
	b := bundle(t, []string{"ls", "/proc/self/fd"}, func(s *specs.Spec) {
		withUserNS(s)
		setNSPath(s, specs.NetworkNamespace, h.net)
		// sysfs needs a network namespace owned by the user namespace.
		s.Mounts = s.Mounts[:5]
	})
	spec, err := LoadSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := planNamespaces(spec); err != nil || !p.vforkable() {
		t.Fatalf("plan %+v (%v): not the vfork path", p, err)
	}
	out := outFile(t)
	id := uniqueID(t)
	before := allChildren(t)
	c, err := r.Create(id, b, CreateOptions{Stdio: Stdio{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer r.Delete(id, true)
	checkDumpable(t)
	if n := allChildren(t); n != before+1 {
		t.Errorf("%d children after create, want %d (init only)", n, before+1)
	}
	ns := func(n string) string { return "/proc/" + strconv.Itoa(c.Process.Pid) + "/ns/" + n }
	user := nsLink(t, ns("user"))
	if host := nsLink(t, "/proc/self/ns/user"); user == host {
		t.Fatal("init is in the host's user namespace")
	}
	for _, n := range []string{"mnt", "pid", "uts", "ipc"} {
		if got := nsOwner(t, ns(n)); got != user {
			t.Errorf("%s namespace owned by %s, want the container's %s", n, got, user)
		}
	}
	if got, want := nsLink(t, ns("net")), nsLink(t, h.net); got != want {
		t.Errorf("net namespace %s, want the joined %s", got, want)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	if code, err := c.Wait(); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, readOut(t, out))
	}
	// 0, 1, 2 and the directory ls is reading.
	if fds := strings.Fields(readOut(t, out)); len(fds) != 4 {
		t.Errorf("container fds %v: runtime fds leaked", fds)
	}
	if err := r.Delete(id, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
}

// A failure at a step of the vfork path names the step, leaves no process
// and no state, and the runtime dumpable.
func TestVforkUserNSErrors(t *testing.T) {
	if !haveVfork {
		t.Skip("no vfork path on this architecture")
	}
	r := newRuntime(t)
	garbage := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(garbage, []byte("not an executable\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*specs.Spec)
		exe    string
		orphan bool // CloneParent: stage 1 reaps a failed init itself
		want   string
		is     error
	}{
		{name: "join", want: "join network namespace /proc/self/ns/uts: invalid argument", mutate: func(s *specs.Spec) {
			setNSPath(s, specs.NetworkNamespace, "/proc/self/ns/uts")
			s.Mounts = s.Mounts[:5]
		}},
		{name: "uid 0 unmapped", want: "setresuid(0) in the user namespace: invalid argument", is: ErrInvalid, mutate: func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 1, HostID: 100001, Size: 65535}}
		}},
		{name: "gid 0 unmapped", want: "setresgid(0) in the user namespace: invalid argument", is: ErrInvalid, mutate: func(s *specs.Spec) {
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 1, HostID: 100001, Size: 65535}}
		}},
		{name: "exec", exe: garbage, want: "execveat init: exec format error"},
		{name: "exec, orphan", exe: garbage, orphan: true, want: "execveat init: exec format error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := *r
			if tc.exe != "" {
				rt.Exe = tc.exe
			}
			b := bundle(t, []string{"true"}, func(s *specs.Spec) {
				withUserNS(s)
				if tc.mutate != nil {
					tc.mutate(s)
				}
			})
			if tc.orphan {
				// An init that stage 1 left unreaped would be
				// orphaned to us, and counted.
				if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
					t.Fatal(err)
				}
				defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
			}
			id := uniqueID(t)
			before := allChildren(t)
			_, err := rt.Create(id, b, CreateOptions{CloneParent: tc.orphan})
			if err == nil {
				rt.Delete(id, true)
				t.Fatal("create succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("error %q, want %q (%v)", err, tc.want, tc.is)
			}
			if after := allChildren(t); after != before {
				t.Errorf("child processes: %d before, %d after", before, after)
			}
			if _, err := os.Stat(filepath.Join(r.Root, id)); err == nil {
				t.Error("state dir left")
			}
			checkDumpable(t)
		})
	}
}

// Without a NOFILE rlimit in the spec, init gets the limit os/exec gives
// children (Go's own is raised), as on Go's fork path.
func TestVforkUserNSNofile(t *testing.T) {
	if !haveVfork {
		t.Skip("no vfork path on this architecture")
	}
	r := newRuntime(t)
	want, err := exec.Command("/bin/busybox", "sh", "-c", "ulimit -n").Output()
	if err != nil {
		t.Skip("needs /bin/busybox")
	}
	code, out := run(t, r, bundle(t, []string{"sh", "-c", "ulimit -n"}, func(s *specs.Spec) {
		withUserNS(s)
		s.Process.Rlimits = nil
	}))
	if code != 0 || out != string(want) {
		t.Errorf("exit %d, NOFILE soft limit %q, want %q", code, out, want)
	}
}
