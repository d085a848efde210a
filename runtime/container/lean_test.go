package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/initstub"
	"github.com/estiba/estiba/runtime/procfs"
	"github.com/estiba/estiba/runtime/rootfs"
)

// newLeanRuntime is newRuntime with the init stub: containers that need
// nothing else of an init get the stub (lean.go).
func newLeanRuntime(t *testing.T) *Runtime {
	t.Helper()
	r := newRuntime(t)
	r.Stub = testutil.InitStub(t)
	return r
}

// The same containers, once with the Go init and once with the stub, must
// see the same process: credentials, capabilities, limits, filters, cwd,
// umask, names, mounts.
func TestLeanInitMatchesGoInit(t *testing.T) {
	goRT, leanRT := newRuntime(t), newLeanRuntime(t)
	// One procfs instance for all the lean creates (as the engine's
	// spawner has): sysctls and oom_score_adj still reach each container.
	leanRT.Procfs = &procfs.Shared{}
	show := "id; umask; pwd; hostname; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; " +
		"ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; ls /dev; " +
		// Mount point, type and source; not a cgroup mount's source: the
		// lean path binds the host's hierarchies (whatever source the host
		// gave them), a Go init mounts them anew.
		`awk '{for (i = 7; $i != "-"; i++); s = $(i+2); if ($(i+1) ~ /^cgroup/) s = "-"; print $5, $(i+1), s}' /proc/self/mountinfo; ` +
		"ls -l /proc/self/fd | wc -l; " +
		// Each hierarchy is the container's own cgroup, which has no
		// children: the hierarchy's root would show the host's.
		"echo cgroup-subdirs=$(find /sys/fs/cgroup -mindepth 2 -type d | wc -l)"
	withUserNS := func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.Resources = nil
	}
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
	}{
		{"default", nil},
		{"user, groups, cwd, umask, fewer capabilities", func(s *specs.Spec) {
			umask := uint32(0o027)
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &umask}
			s.Process.Cwd = "/tmp"
			c := []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c, Ambient: c}
		}},
		{"no capabilities, no no_new_privs", func(s *specs.Spec) {
			s.Process.Capabilities = nil
			s.Process.NoNewPrivileges = false
		}},
		{"rlimits, oom_score_adj, names, sysctl, read-only root", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
			adj := 500
			s.Process.OOMScoreAdj = &adj
			s.Hostname, s.Domainname = "lean", "example.org"
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
			s.Root.Readonly = true
			s.Process.Args[2] += "; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax /proc/sys/kernel/domainname"
		}},
		{"seccomp with no_new_privs", func(s *specs.Spec) {
			s.Linux.Seccomp = denyMkdir()
			s.Process.Args[2] += "; mkdir /tmp/x; echo $?"
		}},
		{"seccomp without no_new_privs", func(s *specs.Spec) {
			s.Linux.Seccomp = denyMkdir()
			s.Process.NoNewPrivileges = false
			s.Process.Args[2] += "; mkdir /tmp/x; echo $?"
		}},
		{"masked and read-only paths, no cgroup namespace", func(s *specs.Spec) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/etc")
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/tmp")
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.CgroupNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
			s.Process.Args[2] += "; ls /etc | wc -l; touch /tmp/x; echo $?"
		}},
		{"user namespace", withUserNS},
		{"user namespace, sysctl (through the container's proc instance)", func(s *specs.Spec) {
			withUserNS(s)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
			s.Process.Args[2] += "; cat /proc/sys/net/ipv4/ip_unprivileged_port_start"
		}},
		{"user namespace and a user", func(s *specs.Spec) {
			withUserNS(s)
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			s.Process.Args[2] += "; cat /proc/self/uid_map; touch /dev/shm/x; echo $?"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutate := func(s *specs.Spec) {
				if tt.mutate != nil {
					tt.mutate(s)
				}
			}
			b := bundle(t, []string{"sh", "-c", show}, mutate)
			goCode, goOut := run(t, goRT, b)
			leanCode, leanOut := run(t, leanRT, b)
			if goCode != 0 {
				t.Fatalf("Go init: exit %d: %s", goCode, goOut)
			}
			if !strings.Contains(leanOut, "cgroup-subdirs=0\n") {
				t.Errorf("the container sees cgroups that are not its own:\n%s", leanOut)
			}
			if leanCode != goCode || leanOut != goOut {
				t.Errorf("stub: exit %d, output:\n%s\nGo init: exit %d, output:\n%s", leanCode, leanOut, goCode, goOut)
			}
		})
	}
}

// denyMkdir is a profile that fails mkdir/mkdirat with EPERM.
func denyMkdir() *specs.LinuxSeccomp {
	errno := uint(1)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno}},
	}
}

// Between create and start, a lean container's init is the stub, exec'd
// from a sealed memfd copy (CVE-2019-5736) and not dumpable (its fd of the
// exec fifo); after start, the container's process.
func TestLeanInitIsTheStub(t *testing.T) {
	r := newLeanRuntime(t)
	out := outFile(t)
	id := uniqueID(t)
	c, err := r.Create(id, bundle(t, []string{"sh", "-c", "echo started"}, nil), CreateOptions{Stdio: Stdio{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Delete(id, true)
	proc := "/proc/" + strconv.Itoa(c.Process.Pid)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil || !strings.HasPrefix(string(cmdline), StubName+"\x00") {
		t.Fatalf("init's cmdline %q, %v: not the stub", cmdline, err)
	}
	if !exeIsSealed(proc + "/exe") {
		t.Error("the stub does not run from a sealed copy")
	}
	if _, err := os.OpenFile(proc+"/exe", os.O_WRONLY, 0); err == nil {
		t.Error("the stub's binary is writable through /proc/<init>/exe")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(); err != nil || code != 0 {
		t.Fatalf("exit %d, %v", code, err)
	}
	if got := readOut(t, out); got != "started\n" {
		t.Fatalf("output %q", got)
	}
}

// With a StubCache, creates exec one sealed copy of the stub; without,
// each its own. Either way no mount is made for it (newRuntime's checks).
func TestStubCache(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			r := newLeanRuntime(t)
			if cached {
				r.StubCache = &StubCache{}
				defer r.StubCache.close()
			}
			var inodes []uint64
			for range 2 {
				id := uniqueID(t)
				c, err := r.Create(id, bundle(t, []string{"true"}, nil), CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				exe := "/proc/" + strconv.Itoa(c.Process.Pid) + "/exe"
				var st unix.Stat_t
				if err := unix.Stat(exe, &st); err != nil || !exeIsSealed(exe) {
					t.Fatalf("stub exe %s: %v, sealed %v", exe, err, exeIsSealed(exe))
				}
				inodes = append(inodes, st.Ino)
				if err := r.Delete(id, true); err != nil {
					t.Fatal(err)
				}
				c.Wait()
			}
			if same := inodes[0] == inodes[1]; same != cached {
				t.Fatalf("inodes %v: shared %v, want %v", inodes, same, cached)
			}
		})
	}
}

// A lean create that fails (a missing program, a cwd that is not there)
// says why, like the Go init, and leaves nothing behind (newRuntime's
// checks).
func TestLeanCreateErrors(t *testing.T) {
	r := newLeanRuntime(t)
	tests := []struct {
		name   string
		args   []string
		mutate func(*specs.Spec)
		want   string
	}{
		{"missing program", []string{"no-such-program"}, nil, "executable file not found"},
		{"missing cwd", []string{"true"}, func(s *specs.Spec) { s.Process.Cwd = "/no/such/dir" }, "chdir to cwd /no/such/dir: no such file or directory"},
		{"capability the host lacks", []string{"true"}, func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_RESOURCE")
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uniqueID(t)
			_, err := r.Create(id, bundle(t, tt.args, tt.mutate), CreateOptions{})
			if tt.want == "" {
				// Only where the host's bounding set lacks it (CI's).
				if err == nil {
					r.Delete(id, true)
					t.Skip("the host has CAP_SYS_RESOURCE")
				}
				if !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
					t.Fatalf("err = %v, want it to name CAP_SYS_RESOURCE", err)
				}
				return
			}
			if err == nil {
				r.Delete(id, true)
				t.Fatal("create succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var se *initstub.StepError
			if tt.name == "missing cwd" && !errors.As(err, &se) {
				t.Fatalf("err = %v: not the stub's step", err)
			}
		})
	}
}

// With NoExecWait, Start returns once init is released; a poststart hook
// still sees the container's process exec'd, as the spec wants, and a
// process that runs to its end is waited for as usual.
func TestNoExecWait(t *testing.T) {
	for _, lean := range []bool{false, true} {
		r := newRuntime(t)
		if lean {
			r = newLeanRuntime(t)
		}
		r.NoExecWait = true
		t.Run("lean="+strconv.FormatBool(lean), func(t *testing.T) {
			code, out := run(t, r, bundle(t, []string{"sh", "-c", "echo ran"}, nil))
			if code != 0 || out != "ran\n" {
				t.Errorf("run: exit %d, output %q", code, out)
			}
			seen := filepath.Join(t.TempDir(), "cmdline")
			hook := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
				`p=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p'); tr '\0' ' ' < /proc/$p/cmdline > ` + seen}}
			id := uniqueID(t)
			c, err := r.Run(id, bundle(t, []string{"sleep", "100"}, func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{Poststart: []specs.Hook{hook}}
			}), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Delete(id, true)
			got, err := os.ReadFile(seen)
			if err != nil || string(got) != "sleep 100 " {
				t.Errorf("the poststart hook saw %q (%v), not the container's process", got, err)
			}
			r.Kill(id, unix.SIGKILL, false)
			c.Wait()
		})
	}
}

// The early batch goes to the Setup that asks for it, once, mounted then;
// one it does not take is closed at release.
func TestEarlyFS(t *testing.T) {
	testutil.RequiresRoot(t)
	reqs := []rootfs.FSRequest{{Type: "tmpfs"}, {Type: "tmpfs", Config: rootfs.FSConfig{Params: [][2]string{{"size", "1m"}}}}}
	newBatch := func() (*earlyFS, []int) {
		var ctxs []int
		for _, q := range reqs {
			fd, err := unix.Fsopen(q.Type, unix.FSOPEN_CLOEXEC)
			if err == nil {
				for _, kv := range q.Config.Params {
					if err == nil {
						err = unix.FsconfigSetString(fd, kv[0], kv[1])
					}
				}
				if err == nil {
					err = unix.FsconfigCreate(fd)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			ctxs = append(ctxs, fd)
		}
		e := &earlyFS{reqs: reqs, done: make(chan struct{}), fds: ctxs}
		close(e.done)
		return e, ctxs
	}
	open := func(fd int) bool { _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); return err == nil }

	e, ctxs := newBatch()
	if _, ok, _ := e.take(reqs[:1]); ok {
		t.Fatal("took the batch for other requests")
	}
	got, ok, err := e.take(slices.Clone(reqs))
	if !ok || err != nil || len(got) != len(reqs) {
		t.Fatalf("take = %v, %v, %v; want the batch, mounted", got, ok, err)
	}
	for _, fd := range got {
		var st unix.Statfs_t
		if err := unix.Fstatfs(fd, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
			t.Errorf("fd %d: not a tmpfs mount (%v)", fd, err)
		}
		unix.Close(fd)
	}
	if _, ok, _ := e.take(reqs); ok {
		t.Fatal("took the batch twice")
	}
	e.release()
	for _, fd := range ctxs {
		if open(fd) && !slices.Contains(got, fd) {
			t.Errorf("context fd %d left open after take", fd)
		}
	}

	e, ctxs = newBatch()
	e.release()
	for _, fd := range ctxs {
		if open(fd) {
			t.Errorf("fd %d of an untaken batch left open", fd)
			unix.Close(fd)
		}
	}
	var none *earlyFS
	if _, ok, _ := none.take(nil); ok {
		t.Error("a nil batch was taken")
	}
	none.release()
}
