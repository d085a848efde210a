package container

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsHolder is a process that keeps namespaces alive for a container to join.
type nsHolder struct {
	pid int
	// time is the path of the time namespace it made for its children
	// (unshare(1) itself stays in the host's).
	user, time, net string
}

type holderOpts struct {
	user   []syscall.SysProcIDMap // nil: no user namespace
	time   bool                   // a time namespace with boottime +1 day, monotonic +2 h
	newNet bool
}

// startHolder starts a holder; the test's cleanup kills it.
func startHolder(t *testing.T, o holderOpts) *nsHolder {
	t.Helper()
	args := []string{"sleep", "1000"}
	if o.time {
		if out, _ := exec.Command("unshare", "--help").CombinedOutput(); !strings.Contains(string(out), "--boottime") {
			t.Skip("needs util-linux unshare (--time with offsets)")
		}
		// --fork: the time namespace is its children's; --kill-child:
		// the sleep dies with unshare.
		args = append([]string{"unshare", "--time", "--boottime", "86400", "--monotonic", "7200", "--fork", "--kill-child"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if o.user != nil {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = o.user
		cmd.SysProcAttr.GidMappings = o.user
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		if o.user[0].ContainerID == 0 {
			// Root inside it, to keep the capabilities unshare(1) needs.
			cmd.SysProcAttr.Credential = &syscall.Credential{}
		}
	}
	if o.newNet {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWNET
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("namespace holder: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	h := &nsHolder{pid: cmd.Process.Pid}
	ns := func(n string) string { return fmt.Sprintf("/proc/%d/ns/%s", h.pid, n) }
	if o.user != nil {
		h.user = ns("user")
	}
	if o.newNet {
		h.net = ns("net")
	}
	if o.time {
		h.time = ns("time_for_children")
		// Ready once unshare has forked: the offsets are written by then.
		for i := 0; ; i++ {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", h.pid, h.pid))
			if len(strings.TrimSpace(string(b))) > 0 {
				break
			}
			if i == 500 {
				t.Fatal("namespace holder: unshare never forked")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return h
}

// nsLink is the identity of a namespace file, as /proc/self/ns/* shows it.
func nsLink(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	typ := path[strings.LastIndex(path, "/")+1:]
	typ = strings.TrimSuffix(typ, "_for_children")
	return fmt.Sprintf("%s:[%d]", typ, st.Ino)
}

// setNSPath joins typ by path, adding it to s if absent.
func setNSPath(s *specs.Spec, typ specs.LinuxNamespaceType, path string) {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == typ {
			s.Linux.Namespaces[i].Path = path
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
}

// Joining existing user and time namespaces at create (the raw-fork
// trampoline, trampoline.go), with the rest of the setup (new pid, mount,
// network namespaces owned by the joined user namespace, sysfs, cgroups).
func TestCreateJoinsUserAndTimeNamespaces(t *testing.T) {
	mapped := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 200000, Size: 65536}}
	probe := "cat /proc/self/uid_map; id -u; for n in user time net; do readlink /proc/self/ns/$n; done; cat /proc/self/timens_offsets /proc/uptime; echo $(ls /proc/self/fd); echo $$"
	tests := []struct {
		name     string
		holder   holderOpts
		joinNet  bool
		offsets  map[string]specs.LinuxTimeOffset // a new time namespace
		newUser  bool                             // a new user namespace
		wantErr  string
		wantUID  string // uid_map line
		wantTime []string
	}{
		{name: "user", holder: holderOpts{user: mapped}, wantUID: "0 200000 65536"},
		{name: "user+time", holder: holderOpts{user: mapped, time: true}, wantUID: "0 200000 65536",
			wantTime: []string{"monotonic 7200 0", "boottime 86400 0"}},
		{name: "time", holder: holderOpts{time: true}, wantUID: "0 0 4294967295",
			wantTime: []string{"monotonic 7200 0", "boottime 86400 0"}},
		{name: "user+new time", holder: holderOpts{user: mapped}, wantUID: "0 200000 65536",
			offsets:  map[string]specs.LinuxTimeOffset{"boottime": {Secs: 2 * 86400}, "monotonic": {Secs: 60}},
			wantTime: []string{"monotonic 60 0", "boottime 172800 0"}},
		{name: "new user+time", holder: holderOpts{time: true}, newUser: true, wantUID: "0 100000 65536",
			wantTime: []string{"monotonic 7200 0", "boottime 86400 0"}},
		{name: "user+net", holder: holderOpts{user: mapped, newNet: true}, joinNet: true, wantUID: "0 200000 65536"},
		{name: "uid 0 unmapped", holder: holderOpts{user: []syscall.SysProcIDMap{{ContainerID: 1000, HostID: 300000, Size: 1}}},
			wantErr: "must map uid and gid 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRuntime(t)
			h := startHolder(t, tc.holder)
			b := bundle(t, []string{"sh", "-c", probe}, func(s *specs.Spec) {
				if h.user != "" {
					setNSPath(s, specs.UserNamespace, h.user)
				}
				if h.time != "" {
					setNSPath(s, specs.TimeNamespace, h.time)
				}
				if tc.joinNet {
					setNSPath(s, specs.NetworkNamespace, h.net)
				}
				if tc.newUser {
					usernsSpec(s)
				}
				if tc.offsets != nil {
					s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
					s.Linux.TimeOffsets = tc.offsets
				}
			})
			id := uniqueID(t)
			out := outFile(t)
			c, err := r.Run(id, b, CreateOptions{Stdio: Stdio{Stdout: out, Stderr: out}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					if err == nil {
						c.Wait()
						r.Delete(id, true)
					}
					t.Fatalf("run: %v, want an error with %q", err, tc.wantErr)
				}
				if cg := findCgroup(id); cg != "" {
					t.Errorf("cgroup left after a failed create: %s", cg)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			code, _ := c.Wait()
			if err := r.Delete(id, false); err != nil {
				t.Fatalf("delete: %v", err)
			}
			// Spaces squeezed: timens_offsets and uid_map align columns.
			o := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(readOut(t, out)), "\n", " _ ")), " ")
			o = strings.ReplaceAll(o, " _ ", "\n")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, o)
			}
			lines := strings.Split(strings.TrimSpace(o), "\n")
			if lines[0] != tc.wantUID || lines[1] != "0" {
				t.Errorf("uid_map, uid: %q, want %q and 0", lines[:2], tc.wantUID)
			}
			want := map[int]string{}
			if h.user != "" {
				want[2] = nsLink(t, h.user)
			}
			if h.time != "" {
				want[3] = nsLink(t, h.time)
			} else if tc.offsets == nil {
				want[3] = nsLink(t, "/proc/self/ns/time")
			}
			if tc.joinNet {
				want[4] = nsLink(t, h.net)
			} else {
				if self := nsLink(t, "/proc/self/ns/net"); len(lines) > 4 && lines[4] == self {
					t.Errorf("net namespace %s: the host's, want a new one", self)
				}
			}
			for i, w := range want {
				if len(lines) <= i || lines[i] != w {
					t.Errorf("line %d of %q: want %s", i, o, w)
				}
			}
			for _, w := range tc.wantTime {
				if !strings.Contains(o, w) {
					t.Errorf("timens_offsets in %q: want %q", o, w)
				}
			}
			var up float64
			fmt.Sscan(lines[len(lines)-3], &up)
			if len(tc.wantTime) > 0 && up < 86400 {
				t.Errorf("uptime %v in the container: the boottime offset does not apply", up)
			}
			// Stdio and ls's own directory: no fd of the trampoline.
			if fds := lines[len(lines)-2]; fds != "0 1 2 3" {
				t.Errorf("fds in the container: %q, want 0 1 2 3", fds)
			}
			if lines[len(lines)-1] != "1" {
				t.Errorf("the container's process is pid %s, want 1 (a new pid namespace)", lines[len(lines)-1])
			}
			if cg := findCgroup(id); cg != "" {
				t.Errorf("cgroup left: %s", cg)
			}
		})
	}
}

// exec into a container that joined a user namespace lands in that
// namespace, as its root, with the container's other namespaces.
func TestExecIntoJoinedUserNamespace(t *testing.T) {
	r := newRuntime(t)
	h := startHolder(t, holderOpts{user: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 200000, Size: 65536}}, time: true})
	id := startSleeper(t, r, func(s *specs.Spec) {
		setNSPath(s, specs.UserNamespace, h.user)
		setNSPath(s, specs.TimeNamespace, h.time)
	})
	code, out := execOut(t, r, id, "sh", "-c", "id -u; for n in user time pid; do readlink /proc/self/ns/$n; done")
	st, err := r.State(id)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0", nsLink(t, h.user), nsLink(t, h.time), nsLink(t, fmt.Sprintf("/proc/%d/ns/pid", st.Pid))}
	if got := strings.Fields(out); code != 0 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("exec exit %d: %q, want %q", code, out, want)
	}
}
