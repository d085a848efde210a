package cgroups

import (
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// realCgroup gives a test its own cgroup path under a unique top-level
// parent on the real host, and removes the parent (and checks nothing of it
// remains) when the test ends.
func realCgroup(t *testing.T) (Manager, string) {
	t.Helper()
	testutil.RequiresRoot(t)
	parent := fmt.Sprintf("estiba-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	testutil.CheckNoCgroups(t, DefaultRoot, parent)
	m, err := New(Config{Path: "/" + parent + "/ctr", Root: DefaultRoot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		parents, err := New(Config{Path: "/" + parent, Root: DefaultRoot})
		if err == nil {
			err = parents.Destroy()
		}
		if err != nil {
			t.Errorf("remove test parent cgroup: %v", err)
		}
	})
	return m, parent
}

// startSleep starts a sleep that the test kills and reaps at its end.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func ptr[T any](v T) *T { return &v }

// openEntry opens m's Entry for the test, which it skips (why) on a host
// whose layout is skip.
func openEntry(t *testing.T, m Manager, skip Mode, why string) *Entry {
	t.Helper()
	if m.Mode() == skip {
		t.Skip(why)
	}
	e, err := m.OpenEntry(All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestRealApplySetDestroy(t *testing.T) {
	m, _ := realCgroup(t)
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
	})
	if err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("Pids() = %v, want it to hold %d", pids, cmd.Process.Pid)
	}
	checks := map[string]map[string]string{}
	if m.Mode() == ModeV2 {
		checks[""] = map[string]string{"memory.max": "67108864", "pids.max": "42", "cpu.weight": "20", "cpu.max": "50000 100000"}
	} else {
		checks["memory"] = map[string]string{"memory.limit_in_bytes": "67108864"}
		checks["pids"] = map[string]string{"pids.max": "42"}
		checks["cpu"] = map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"}
	}
	paths := m.Paths()
	for ctrl, files := range checks {
		for f, want := range files {
			got, err := os.ReadFile(filepath.Join(paths[ctrl], f))
			if err != nil {
				t.Error(err)
				continue
			}
			if strings.TrimSpace(string(got)) != want {
				t.Errorf("%s/%s = %q, want %q", paths[ctrl], f, strings.TrimSpace(string(got)), want)
			}
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range paths {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still there after Destroy (err %v)", d, err)
		}
	}
}

// inCgroup starts `sh -c script` held at a `read` until the test has applied
// the cgroup (and anything else in setup), then lets it run and returns its
// combined output and exit error.
func inCgroup(t *testing.T, m Manager, setup func(), script string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read go; "+script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	setup()
	_, _ = stdin.Write([]byte("go\n"))
	_ = stdin.Close()
	err = cmd.Wait()
	return out.String(), err
}

func TestRealDevices(t *testing.T) {
	m, _ := realCgroup(t)
	null := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"}
	zero := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"}
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	out, err := inCgroup(t, m, func() {
		if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{denyAll, null}}); err != nil {
			t.Fatal(err)
		}
	}, "head -c1 /dev/zero >/dev/null")
	if err == nil || !strings.Contains(out, "not permitted") {
		t.Errorf("reading /dev/zero with only /dev/null allowed: err %v, output %q; want EPERM", err, out)
	}
	// Update the same cgroup: now /dev/zero is readable but not writable.
	out, err = inCgroup(t, m, func() {
		if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{denyAll, null, zero}}); err != nil {
			t.Fatal(err)
		}
	}, "head -c1 /dev/zero >/dev/null && echo read-ok; echo x >/dev/zero || echo write-denied")
	if err != nil || !strings.Contains(out, "read-ok") || !strings.Contains(out, "write-denied") {
		t.Errorf("after update: err %v, output %q; want read-ok and write-denied", err, out)
	}
	if m.Mode() == ModeV2 {
		if n := attachedDevicePrograms(t, m.Paths()[""]); n != 1 {
			t.Errorf("%d device programs attached after an update, want 1", n)
		}
	}
}

// BenchmarkLifecycle measures what a container start and delete cost in
// cgroup work: New, create, Set memory and pids, Destroy.
func BenchmarkLifecycle(b *testing.B) {
	testutil.RequiresRoot(b)
	parent := fmt.Sprintf("estiba-bench-%d", os.Getpid())
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)}, Pids: &specs.LinuxPids{Limit: ptr[int64](100)}}
	for i := 0; b.Loop(); i++ {
		m, err := New(Config{Path: fmt.Sprintf("/%s/c%d", parent, i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Apply(0); err != nil {
			b.Fatal(err)
		}
		if err := m.Set(r); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
	p, err := New(Config{Path: "/" + parent})
	if err == nil {
		err = p.Destroy()
	}
	if err != nil {
		b.Error(err)
	}
}

// TestRealDevicesBPF runs the v2 device program on whatever cgroup2
// hierarchy this host has: the whole tree on v2, the unified mount on
// hybrid hosts (the kernel runs cgroup device programs there too).
func TestRealDevicesBPF(t *testing.T) {
	m, _ := realCgroup(t)
	dir := m.Paths()[""]
	if dir == "" {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	mustRules := func(devs ...specs.LinuxDeviceCgroup) []deviceRule {
		r, err := parseDeviceRules(devs)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	null := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"}
	zeroR := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"}
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	allowAll := specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"}
	denyZero := specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "rwm"}
	for _, tc := range []struct {
		name   string
		rules  []deviceRule
		script string
		want   string
	}{
		{"deny all but null", mustRules(denyAll, null), "head -c1 /dev/zero >/dev/null || echo denied", "denied"},
		{"read-only zero", mustRules(denyAll, null, zeroR), "head -c1 /dev/zero >/dev/null && echo read-ok; echo x >/dev/zero || echo write-denied", "read-ok\nwrite-denied"},
		{"last match wins", mustRules(denyAll, null, zeroR, denyZero), "head -c1 /dev/zero >/dev/null || echo denied", "denied"},
		{"allow all then deny zero", mustRules(allowAll, denyZero), "head -c1 /dev/zero >/dev/null || echo denied; head -c1 /dev/urandom >/dev/null && echo urandom-ok", "denied\nurandom-ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := inCgroup(t, m, func() {
				if err := setDevicesBPF(dir, tc.rules); err != nil {
					t.Fatal(err)
				}
			}, tc.script)
			for _, w := range strings.Split(tc.want, "\n") {
				if !strings.Contains(out, w) {
					t.Errorf("output %q, want it to contain %q", out, w)
				}
			}
			if n := attachedDevicePrograms(t, dir); n != 1 {
				t.Errorf("%d device programs attached after update, want 1 (the old one must be detached)", n)
			}
		})
	}
}

func TestRealFreeze(t *testing.T) {
	m, _ := realCgroup(t)
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		if d, ok := m.Paths()["freezer"]; ok {
			s, _ := readFile(d, "freezer.state")
			return s
		}
		ev, _ := readKeyValues(m.Paths()[""], "cgroup.events")
		if ev["frozen"] == 1 {
			return "FROZEN"
		}
		return "THAWED"
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != "FROZEN" {
		t.Errorf("after Freeze: %s", s)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != "THAWED" {
		t.Errorf("after Thaw: %s", s)
	}
}

func TestRealStats(t *testing.T) {
	m, _ := realCgroup(t)
	err := m.Set(&specs.LinuxResources{
		Pids:   &specs.LinuxPids{Limit: ptr[int64](100)},
		Memory: &specs.LinuxMemory{Limit: ptr[int64](256 << 20)},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := inCgroup(t, m, func() {}, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done")
	if err != nil || !strings.Contains(out, "done") {
		t.Fatalf("busy loop: %v %q", err, out)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.UsageNanos == 0 {
		t.Errorf("CPU usage 0 after a busy loop: %+v", st.CPU)
	}
	if st.Pids.Limit != 100 {
		t.Errorf("pids limit %d, want 100", st.Pids.Limit)
	}
	if st.Memory.Limit != 256<<20 || st.Memory.Usage == 0 {
		t.Errorf("memory %+v, want limit %d and some usage", st.Memory, 256<<20)
	}
}

func TestRealHugetlb(t *testing.T) {
	m, _ := realCgroup(t)
	err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 21}}})
	if err != nil {
		if _, statErr := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); statErr != nil {
			t.Skipf("no 2MB huge pages: %v", err)
		}
		t.Fatal(err)
	}
	dir, v2, err := m.(*manager).dirFor("hugetlb")
	if err != nil {
		t.Fatal(err)
	}
	file := "hugetlb.2MB.limit_in_bytes"
	if v2 {
		file = "hugetlb.2MB.max"
	}
	if got, _ := readFile(dir, file); got != "8388608" {
		t.Errorf("%s/%s = %q, want 8388608", dir, file, got)
	}
}

func TestRealErrors(t *testing.T) {
	m, _ := realCgroup(t)
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    specs.LinuxResources
		want string
	}{
		{"shares below 2", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1)}}, "out of range"},
		{"negative limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-5)}}, "want -1"},
		{"unknown page size", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}}, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Set(&tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Set: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRealCheckBeforeUpdate(t *testing.T) {
	m, _ := realCgroup(t)
	// Memory is charged where it is allocated (v1 moves no charges with a
	// task), so the shell allocates after joining.
	cmd := exec.Command("sh", "-c", `read go; x=$(head -c 2000000 /dev/zero | tr '\0' a); echo ready; read wait`)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	_, _ = stdin.Write([]byte("go\n"))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("helper: %q %v", buf, err)
	}
	err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](4096), CheckBeforeUpdate: ptr(true)}})
	if err == nil || !strings.Contains(err.Error(), "below current usage") {
		t.Errorf("Set limit below usage with checkBeforeUpdate: %v, want a 'below current usage' error", err)
	}
}

// TestRealCloneIntoCgroup starts a child directly in the container's cgroup2
// cgroup (clone3 CLONE_INTO_CGROUP) through the fd OpenEntry gives.
func TestRealCloneIntoCgroup(t *testing.T) {
	m, parent := realCgroup(t)
	e := openEntry(t, m, ModeV1, "no cgroup2 hierarchy on this host")
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(e.Unified.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	self, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if want := "0::/" + parent + "/ctr\n"; !strings.Contains(string(self), want) {
		t.Errorf("child's /proc/PID/cgroup:\n%s\nwant a line %q", self, want)
	}
}

// TestRealRelativePath checks that a relative cgroupsPath lands below the
// test process's own cgroup. It runs only where that is the root cgroup (the
// VM lane), so the test never creates cgroups inside whatever cgroup runs it.
func TestRealRelativePath(t *testing.T) {
	testutil.RequiresRoot(t)
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	own, err := parseSelfCgroup(self)
	if err != nil {
		t.Fatal(err)
	}
	for c, p := range own {
		if p != "/" {
			t.Skipf("own %q cgroup is %s, not the root", c, p)
		}
	}
	name := fmt.Sprintf("estiba-test-%d-rel", os.Getpid())
	testutil.CheckNoCgroups(t, DefaultRoot, name)
	m, err := New(Config{Path: name})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destroy()
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for c, d := range m.Paths() {
		if filepath.Base(d) != name || !strings.HasPrefix(d, DefaultRoot+"/") {
			t.Errorf("%s: %s", c, d)
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// firstBlockDevice returns a whole disk's MAJ:MIN from /proc/partitions.
func firstBlockDevice(t *testing.T) (int64, int64, bool) {
	b, err := os.ReadFile("/proc/partitions")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		var maj, min, blocks int64
		var name string
		if n, _ := fmt.Sscan(line, &maj, &min, &blocks, &name); n == 4 && !strings.HasPrefix(name, "loop") && !strings.HasPrefix(name, "zram") {
			return maj, min, true
		}
	}
	return 0, 0, false
}

// TestRealSetMany sets most resource fields at once on the real host and
// reads the kernel's files back.
func TestRealSetMany(t *testing.T) {
	m, _ := realCgroup(t)
	mm := m.(*manager)
	if err := m.Apply(0); err != nil { // create, so dirFor can look at it
		t.Fatal(err)
	}
	r := &specs.LinuxResources{
		CPU: &specs.LinuxCPU{Shares: ptr[uint64](256), Quota: ptr[int64](30000), Period: ptr[uint64](100000),
			Burst: ptr[uint64](1000), Cpus: "0", Mems: "0"},
		Memory: &specs.LinuxMemory{Limit: ptr[int64](128 << 20), Reservation: ptr[int64](64 << 20), Kernel: ptr[int64](1 << 30)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](50)},
	}
	memDir, memV2, err := mm.dirFor("memory")
	if err != nil {
		t.Fatal(err)
	}
	swapFile := "memory.memsw.limit_in_bytes"
	if memV2 {
		swapFile = "memory.swap.max"
	} else {
		r.Memory.Swappiness = ptr[uint64](30)
	}
	// Swap accounting is a kernel option: test it where it exists.
	if fileExists(filepath.Dir(memDir), swapFile) || fileExists(DefaultRoot, "memory.swap.max") || !memV2 && fileExists(filepath.Join(DefaultRoot, "memory"), swapFile) {
		r.Memory.Swap = ptr[int64](256 << 20)
	}
	maj, min, haveDisk := firstBlockDevice(t)
	if haveDisk {
		r.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 1 << 20}}}
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	cpuDir, _, _ := mm.dirFor("cpu")
	cpusetDir, _, _ := mm.dirFor("cpuset")
	pidsDir, _, _ := mm.dirFor("pids")
	want[filepath.Join(pidsDir, "pids.max")] = "50"
	want[filepath.Join(cpusetDir, "cpuset.cpus")] = "0"
	want[filepath.Join(cpusetDir, "cpuset.mems")] = "0"
	if memV2 {
		want[filepath.Join(cpuDir, "cpu.weight")] = "10"
		want[filepath.Join(cpuDir, "cpu.max")] = "30000 100000"
		want[filepath.Join(cpuDir, "cpu.max.burst")] = "1000"
		want[filepath.Join(memDir, "memory.max")] = "134217728"
		want[filepath.Join(memDir, "memory.low")] = "67108864"
		if r.Memory.Swap != nil {
			want[filepath.Join(memDir, "memory.swap.max")] = "134217728"
		}
	} else {
		want[filepath.Join(cpuDir, "cpu.shares")] = "256"
		want[filepath.Join(cpuDir, "cpu.cfs_quota_us")] = "30000"
		want[filepath.Join(cpuDir, "cpu.cfs_burst_us")] = "1000"
		want[filepath.Join(memDir, "memory.limit_in_bytes")] = "134217728"
		want[filepath.Join(memDir, "memory.soft_limit_in_bytes")] = "67108864"
		want[filepath.Join(memDir, "memory.swappiness")] = "30"
		if r.Memory.Swap != nil {
			want[filepath.Join(memDir, "memory.memsw.limit_in_bytes")] = "268435456"
		}
	}
	if haveDisk {
		ioDir, ioV2, _ := mm.dirFor("blkio")
		if ioV2 {
			want[filepath.Join(ioDir, "io.max")] = fmt.Sprintf("%d:%d rbps=1048576 wbps=max riops=max wiops=max", maj, min)
		} else {
			want[filepath.Join(ioDir, "blkio.throttle.read_bps_device")] = fmt.Sprintf("%d:%d 1048576", maj, min)
		}
	}
	for f, w := range want {
		got, err := os.ReadFile(f)
		if err != nil {
			t.Error(err)
		} else if strings.TrimSpace(string(got)) != w {
			t.Errorf("%s = %q, want %q", f, strings.TrimSpace(string(got)), w)
		}
	}
	// Raising both memory and swap needs swap first on v1: the fallback order.
	if r.Memory.Swap != nil {
		up := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](512 << 20), Swap: ptr[int64](1 << 30)}}
		if err := m.Set(up); err != nil {
			t.Errorf("raise memory and swap: %v", err)
		}
	}
}

// TestRealDestroyFrozen deletes a paused container: kill, then Destroy must
// still remove everything.
func TestRealDestroyFrozen(t *testing.T) {
	m, _ := realCgroup(t)
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// TestRealOOMKillStats makes the kernel OOM-kill a shell in a small cgroup
// and checks Stats counts it.
func TestRealOOMKillStats(t *testing.T) {
	m, _ := realCgroup(t)
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	mem := &specs.LinuxMemory{Limit: ptr[int64](4 << 20)}
	// No swap to escape to, where swap is accounted.
	if d, v2, err := m.(*manager).dirFor("memory"); err == nil &&
		(v2 && fileExists(d, "memory.swap.max") || !v2 && fileExists(d, "memory.memsw.limit_in_bytes")) {
		mem.Swap = mem.Limit
	}
	if err := m.Set(&specs.LinuxResources{Memory: mem}); err != nil {
		t.Fatal(err)
	}
	out, err := inCgroup(t, m, func() {}, `x=$(head -c 20000000 /dev/zero | tr '\0' a); echo survived`)
	if err == nil || strings.Contains(out, "survived") {
		t.Fatalf("a 20 MB shell variable under a 4 MiB limit survived: %v %q", err, out)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.OOMKills == 0 {
		t.Errorf("OOMKills 0 after an OOM kill: %+v", st.Memory)
	}
}

// TestRealDefaultPath: a container without a cgroupsPath lives at /<id> in
// each hierarchy, and Destroy leaves nothing of it.
func TestRealDefaultPath(t *testing.T) {
	testutil.RequiresRoot(t)
	id := fmt.Sprintf("estiba-test-%d-default", os.Getpid())
	testutil.CheckNoCgroups(t, DefaultRoot, id)
	m, err := New(Config{ID: id, Root: DefaultRoot})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	for c, d := range m.Paths() {
		if filepath.Base(d) != id || filepath.Dir(filepath.Dir(d)) != DefaultRoot && filepath.Dir(d) != DefaultRoot {
			t.Errorf("%q cgroup at %s, want %s/<hierarchy>/%s", c, d, DefaultRoot, id)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// TestRealRemoveEmpty: the engine's parent goes at daemon stop only once
// no container is under it, and RemoveEmpty never fails on one that is.
func TestRealRemoveEmpty(t *testing.T) {
	m, parent := realCgroup(t)
	sleep := startSleep(t)
	if err := m.Apply(sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := RemoveEmpty(DefaultRoot, "/"+parent); err != nil {
		t.Fatalf("RemoveEmpty with a child: %v", err)
	}
	for _, d := range m.Paths() {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("child %s: %v", d, err)
		}
	}
	_ = sleep.Process.Kill()
	_ = sleep.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := RemoveEmpty(DefaultRoot, "/"+parent); err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Paths() {
		if _, err := os.Stat(filepath.Dir(d)); !os.IsNotExist(err) {
			t.Errorf("parent %s still there (%v)", filepath.Dir(d), err)
		}
	}
}

// A v1 cpuset parent the manager creates clones its cpus and mems into new
// children, so a container's cgroup under it is usable without the writes
// that make the kernel rebuild its scheduling domains. (The kernel passes
// the flag on to the children too.)
func TestRealCpusetCloneChildren(t *testing.T) {
	m, parent := realCgroup(t)
	mm := m.(*manager)
	dir, ok := mm.v1["cpuset"]
	if !ok {
		t.Skip("no v1 cpuset hierarchy")
	}
	if err := m.Apply(startSleep(t).Process.Pid); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	pdir := filepath.Dir(dir)
	if filepath.Base(pdir) != parent {
		t.Fatalf("cpuset dir %s is not below %s", dir, parent)
	}
	if got := read(filepath.Join(pdir, "cgroup.clone_children")); got != "1" {
		t.Errorf("parent clone_children = %q, want 1", got)
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if got, want := read(filepath.Join(dir, f)), read(filepath.Join(pdir, f)); got != want || got == "" {
			t.Errorf("%s = %q, want the parent's %q", f, got, want)
		}
	}
}

// TestRealEntryTasks has a single-threaded process join every v1 hierarchy
// itself, writing "0" to the tasks files OpenEntry gives (the init stub's
// way in), and ApplyOnly place it in the rest: it must end up where Apply
// would have put it.
func TestRealEntryTasks(t *testing.T) {
	m, parent := realCgroup(t)
	e := openEntry(t, m, ModeV2, "no cgroup v1 hierarchy on this host")
	script := "for fd in $(seq 3 " + fmt.Sprint(2+len(e.Tasks)) + `); do eval "echo 0 >&$fd" || exit 1; done; echo ready; exec sleep 1000`
	cmd := exec.Command("/bin/bash", "-c", script) // dash takes fds 0-9 only
	cmd.ExtraFiles = e.Tasks
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("helper: %q %v (stderr %q)", buf, err, stderr.String())
	}
	if err := m.ApplyOnly(cmd.Process.Pid, Unified); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := "/" + parent + "/ctr"
	for _, l := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 || strings.Contains(f[1], "name=systemd") || f[1] == "rdma" || f[1] == "misc" {
			continue
		}
		if f[2] != want {
			t.Errorf("child's cgroup line %q, want the path %s", l, want)
		}
	}
	pids, err := m.Pids()
	if err != nil || !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("Pids() = %v, %v; want it to hold %d", pids, err, cmd.Process.Pid)
	}
}

// OpenEntry in two parts, as a lean create does: the cgroup2 cgroup first
// (init is born in it), the v1 ones while init starts. Each part makes its
// own hierarchies only; Destroy removes both.
func TestRealEntryInParts(t *testing.T) {
	m, _ := realCgroup(t)
	exists := func(d string) bool { _, err := os.Stat(d); return err == nil }
	paths := m.Paths()
	v2, hasV2 := paths[""]
	var v1 []string
	for c, d := range paths {
		if c != "" {
			v1 = append(v1, d)
		}
	}
	u, err := m.OpenEntry(Unified)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if len(u.Tasks) != 0 || (u.Unified != nil) != hasV2 || (hasV2 && !exists(v2)) {
		t.Fatalf("OpenEntry(Unified): tasks %d, unified %v; want no tasks and the cgroup2 directory %q", len(u.Tasks), u.Unified, v2)
	}
	for _, d := range v1 {
		if exists(d) {
			t.Fatalf("OpenEntry(Unified) made the v1 cgroup %s", d)
		}
	}
	e, err := m.OpenEntry(V1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Unified != nil || len(e.Tasks) == 0 && len(v1) > 0 {
		t.Fatalf("OpenEntry(V1): unified %v, %d tasks files; want none and one per hierarchy", e.Unified, len(e.Tasks))
	}
	for _, d := range v1 {
		if !exists(d) {
			t.Errorf("OpenEntry(V1) did not make %s", d)
		}
	}
}

// A Host read once gives the managers New gives, and refuses another root.
func TestReadHost(t *testing.T) {
	h, err := ReadHost("")
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	cfg := Config{Path: "/estiba-test-host/ctr"}
	a, err := h.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(a.Paths(), b.Paths()) || a.Mode() != b.Mode() {
		t.Errorf("Host.New: %v (%s); New: %v (%s)", a.Paths(), a.Mode(), b.Paths(), b.Mode())
	}
	if m, err := h.New(Config{Path: "/x", Root: "/elsewhere"}); err == nil || m != nil {
		t.Errorf("Host.New under another root: %v, %v; want an error and no manager", m, err)
	}
}
