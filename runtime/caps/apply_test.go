package caps

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The root tests run the code under test in a child: a re-exec of this test
// binary (TestMain dispatches on childEnv), so that dropping capabilities
// never touches the test process itself.
const childEnv = "ESTIBA_CAPS_TEST_CHILD"

// childReq is what a child is asked to do.
type childReq struct {
	Caps *specs.LinuxCapabilities
	UID  int // setuid to it (with PR_SET_KEEPCAPS) between DropBounding and Apply
	// PreDrop is removed from the bounding and permitted sets first, to
	// stand for a capability the host does not grant.
	PreDrop string
	Exec    bool // exec busybox cat /proc/self/status instead of reading our own
}

func TestMain(m *testing.M) {
	if req := os.Getenv(childEnv); req != "" {
		if err := child(req); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child(reqJSON string) error {
	var req childReq
	if err := json.Unmarshal([]byte(reqJSON), &req); err != nil {
		return err
	}
	// Capabilities are per thread: everything from here to exec must run on
	// this one.
	runtime.LockOSThread()
	if req.PreDrop != "" {
		if err := preDrop(req.PreDrop); err != nil {
			return err
		}
	}
	if err := DropBounding(req.Caps); err != nil {
		return err
	}
	if req.UID != 0 {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return err
		}
		// The raw syscall changes this thread only, as in a container's
		// init; Go's syscall.Setuid would change every thread.
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(req.UID), uintptr(req.UID), uintptr(req.UID)); e != 0 {
			return fmt.Errorf("setresuid: %w", e)
		}
	}
	if err := Apply(req.Caps); err != nil {
		return err
	}
	if req.Exec {
		return unix.Exec("/bin/busybox", []string{"cat", "/proc/self/status"}, nil)
	}
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}

func preDrop(name string) error {
	n, err := Number(name)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
		return err
	}
	cur, err := Current()
	if err != nil {
		return err
	}
	return capset(cur.Effective&^(1<<n), cur.Permitted&^(1<<n), cur.Inheritable&^(1<<n))
}

// runChild runs req in a child and returns its status lines, or the error it
// printed.
func runChild(t *testing.T, req childReq) (map[string]Set, error) {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=NONE")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	sets := map[string]Set{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":\t")
		if ok && strings.HasPrefix(k, "Cap") {
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				t.Fatalf("status line %q: %v", line, err)
			}
			sets[k] = Set(n)
		}
	}
	return sets, nil
}

func mustParse(t *testing.T, names ...string) Set {
	t.Helper()
	s, err := Parse(names)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestApplyInChild(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "busybox")
	base := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"}
	tests := []struct {
		name string
		req  childReq
		want map[string]Set
	}{
		{
			name: "root, docker style",
			req:  childReq{Caps: &specs.LinuxCapabilities{Bounding: base, Effective: base, Permitted: base}},
			want: map[string]Set{"CapBnd": mustParse(t, base...), "CapEff": mustParse(t, base...), "CapPrm": mustParse(t, base...), "CapInh": 0, "CapAmb": 0},
		},
		{
			name: "root, empty sets",
			req:  childReq{Caps: &specs.LinuxCapabilities{}},
			want: map[string]Set{"CapBnd": 0, "CapEff": 0, "CapPrm": 0, "CapInh": 0, "CapAmb": 0},
		},
		{
			name: "root, inheritable only some",
			req: childReq{Caps: &specs.LinuxCapabilities{Bounding: base, Effective: base[:1], Permitted: base[:2],
				Inheritable: base[1:3]}},
			want: map[string]Set{"CapBnd": mustParse(t, base...), "CapEff": mustParse(t, base[:1]...),
				"CapPrm": mustParse(t, base[:2]...), "CapInh": mustParse(t, base[1:3]...), "CapAmb": 0},
		},
		{
			// A non-root process keeps only ambient capabilities across
			// execve (it has no file capabilities): the whole point of
			// the ambient set.
			name: "uid 1000, ambient survives exec",
			req: childReq{UID: 1000, Exec: true, Caps: &specs.LinuxCapabilities{Bounding: base, Effective: base, Permitted: base,
				Inheritable: base[2:], Ambient: base[2:3]}},
			want: map[string]Set{"CapBnd": mustParse(t, base...), "CapEff": mustParse(t, base[2]),
				"CapPrm": mustParse(t, base[2]), "CapInh": mustParse(t, base[2:]...), "CapAmb": mustParse(t, base[2])},
		},
		{
			name: "uid 1000, no ambient: nothing after exec",
			req:  childReq{UID: 1000, Exec: true, Caps: &specs.LinuxCapabilities{Bounding: base, Effective: base, Permitted: base}},
			want: map[string]Set{"CapBnd": mustParse(t, base...), "CapEff": 0, "CapPrm": 0, "CapInh": 0, "CapAmb": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runChild(t, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s = %v, want %v", k, got[k].Names(), want.Names())
				}
			}
		})
	}
}

func TestUnavailableInChild(t *testing.T) {
	testutil.RequiresRoot(t)
	caps := []string{"CAP_CHOWN", "CAP_SYS_RESOURCE"}
	tests := []struct {
		name string
		c    *specs.LinuxCapabilities
		want string
	}{
		{"bounding", &specs.LinuxCapabilities{Bounding: caps},
			"capabilities.bounding: CAP_SYS_RESOURCE: " + ErrUnavailable.Error()},
		{"permitted", &specs.LinuxCapabilities{Effective: caps, Permitted: caps},
			"capabilities.permitted: CAP_SYS_RESOURCE: " + ErrUnavailable.Error()},
		{"inheritable", &specs.LinuxCapabilities{Inheritable: caps},
			"capabilities.inheritable: CAP_SYS_RESOURCE: " + ErrUnavailable.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The host may hold CAP_SYS_RESOURCE: the child drops it first,
			// as this CI host's root never had it.
			c := *tt.c
			if c.Bounding == nil {
				c.Bounding = without(allNames(), "CAP_SYS_RESOURCE")
			}
			_, err := runChild(t, childReq{Caps: &c, PreDrop: "CAP_SYS_RESOURCE"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	s, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	// Current reads the calling thread; the status file read from the same
	// goroutine may come from another thread, but a test process's threads
	// all share one set of credentials.
	for _, f := range []struct {
		key string
		got Set
	}{{"CapEff", s.Effective}, {"CapPrm", s.Permitted}, {"CapInh", s.Inheritable}, {"CapBnd", s.Bounding}, {"CapAmb", s.Ambient}} {
		if !strings.Contains(string(b), fmt.Sprintf("%s:\t%016x\n", f.key, uint64(f.got))) {
			t.Errorf("%s %016x not in status", f.key, uint64(f.got))
		}
	}
}

func allNames() []string { return names[:] }

func without(list []string, name string) []string {
	var out []string
	for _, n := range list {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}
