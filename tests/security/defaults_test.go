package security

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// narrowCaps is the default capability set a runc-compatible runtime may
// give (runc's `spec` gives exactly these three).
var narrowCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// TestDefaultSpecCaps: `estiba-runtime spec` grants only the narrow set,
// in every capability set, and sets no_new_privileges.
func TestDefaultSpecCaps(t *testing.T) {
	e := newEnv(t)
	c := e.spec.Process.Capabilities
	if c == nil {
		t.Fatal("spec has no process.capabilities")
	}
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted, "inheritable": c.Inheritable, "ambient": c.Ambient} {
		for _, cp := range set {
			if !slices.Contains(narrowCaps, cp) {
				t.Errorf("default spec %s set holds %s (want a subset of %v)", name, cp, narrowCaps)
			}
		}
	}
	if !e.spec.Process.NoNewPrivileges {
		t.Error("default spec: noNewPrivileges is off")
	}
}

// defaultsProbe reports, from inside a default container, its mount points,
// capability masks, and whether /proc/sys, /sys and /sys/fs/cgroup take
// writes. Each write puts back the value just read, so a failing runtime
// changes nothing on the host.
const defaultsProbe = `
sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \([^ ]*\) .*/MOUNT \1/p' /proc/self/mountinfo
grep '^Cap' /proc/self/status
v=$(cat /proc/sys/vm/overcommit_memory)
if { echo "$v" > /proc/sys/vm/overcommit_memory; } 2>/dev/null; then echo "WRITABLE /proc/sys"; fi
v=$(cat /proc/sys/kernel/printk_ratelimit)
if { echo "$v" > /proc/sys/kernel/printk_ratelimit; } 2>/dev/null; then echo "WRITABLE /proc/sys/kernel"; fi
if mkdir /sys/fs/cgroup/pids/estiba-qa-escape 2>/dev/null || mkdir /sys/fs/cgroup/estiba-qa-escape 2>/dev/null; then echo "WRITABLE /sys/fs/cgroup"; fi
if touch /sys/kernel/estiba-qa 2>/dev/null; then echo "WRITABLE /sys"; fi
grep ' /sys ' /proc/self/mountinfo | grep -q ' ro,' || echo "SYS-NOT-RO"
grep ' /proc/sys ' /proc/self/mountinfo | grep -q ' ro,' || echo "PROCSYS-NOT-RO"
true`

// TestDefaultContainer: a container from the default spec sees no host
// mount, has the narrow capability masks, and cannot write /proc/sys,
// /sys or the cgroup tree.
func TestDefaultContainer(t *testing.T) {
	e := newEnv(t, "sh", "-c", defaultsProbe)
	r, err := e.runContainer()
	if err != nil {
		t.Fatalf("run: %s", r)
	}
	if !strings.Contains(r.stdout, "MOUNT /\n") || !strings.Contains(r.stdout, "CapEff:") {
		t.Fatalf("probe output incomplete:\n%s", r)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		switch {
		case strings.HasPrefix(l, "MOUNT "):
			m := strings.TrimPrefix(l, "MOUNT ")
			if m != "/" && !strings.HasPrefix(m, "/proc") && !strings.HasPrefix(m, "/dev") && !strings.HasPrefix(m, "/sys") {
				t.Errorf("host mount visible in the container: %s", m)
			}
		case strings.HasPrefix(l, "CapBnd:"), strings.HasPrefix(l, "CapEff:"), strings.HasPrefix(l, "CapPrm:"):
			// AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
			if f := strings.Fields(l); f[1] != "0000000020000420" {
				t.Errorf("capabilities not the narrow set: %s", l)
			}
		case strings.HasPrefix(l, "CapInh:"), strings.HasPrefix(l, "CapAmb:"):
			if f := strings.Fields(l); f[1] != "0000000000000000" {
				t.Errorf("inheritable/ambient capabilities set: %s", l)
			}
		case strings.HasPrefix(l, "WRITABLE"), strings.HasSuffix(l, "NOT-RO"):
			t.Errorf("default container: %s", l)
		}
	}
}

// TestTimerSlackIsTheCallers: estiba's processes run with a wide timer
// slack (internal/timerslack); the container's process, run or exec'd,
// has its caller's instead.
func TestTimerSlackIsTheCallers(t *testing.T) {
	// The runtime inherits the slack of the thread that starts it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const mine = 123457
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, mine, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0)
	e := newEnv(t, "cat", "/proc/self/timerslack_ns")
	r, err := e.runContainer()
	if err != nil {
		t.Fatalf("run: %s", r)
	}
	if got := strings.TrimSpace(r.stdout); got != strconv.Itoa(mine) {
		t.Errorf("container's timer slack %s, want the caller's %d", got, mine)
	}
	e = newEnv(t, "sleep", "60")
	e.create()
	defer e.delete()
	r, err = e.exec("cat", "/proc/self/timerslack_ns")
	if err != nil {
		t.Fatalf("exec: %s", r)
	}
	if got := strings.TrimSpace(r.stdout); got != strconv.Itoa(mine) {
		t.Errorf("exec'd process's timer slack %s, want the caller's %d", got, mine)
	}
}
