package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hybridMountinfo is /proc/self/mountinfo of our CI machines, trimmed.
const hybridMountinfo = `22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
41 22 0:37 / /mnt/other\040cg rw,relatime - cgroup2 cgroup2 rw
`

const hybridSelf = `9:name=systemd:/
4:memory:/process_api/abc
2:cpu,cpuacct:/
1:cpuset:/
0::/user/x
`

func TestParseLayout(t *testing.T) {
	for _, tc := range []struct {
		name, root, mountinfo, self string
		mode                        Mode
		v1                          []string // hierarchy keys
		v1own                       map[string]string
		unified                     string
		wantErr                     string
	}{
		{
			name: "hybrid", root: "/sys/fs/cgroup", mountinfo: hybridMountinfo, self: hybridSelf,
			mode: ModeHybrid, v1: []string{"cpu,cpuacct", "cpuset", "memory", "name=systemd"},
			v1own:   map[string]string{"memory": "/process_api/abc", "cpuset": "/"},
			unified: "/sys/fs/cgroup/unified",
		},
		{
			name: "v2", root: "/sys/fs/cgroup",
			mountinfo: "30 22 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
			self:      "0::/init.scope\n", mode: ModeV2, unified: "/sys/fs/cgroup",
		},
		{
			name: "v1 only, root elsewhere filters mounts", root: "/tmp/fake",
			mountinfo: hybridMountinfo + "50 1 0:40 / /tmp/fake/memory rw - cgroup cgroup rw,memory\n",
			self:      hybridSelf, mode: ModeV1, v1: []string{"memory"},
			v1own: map[string]string{"memory": "/process_api/abc"},
		},
		{
			name: "bind mount of a hierarchy counts once", root: "/sys/fs/cgroup",
			mountinfo: hybridMountinfo + "60 30 0:31 / /sys/fs/cgroup/memory2 rw - cgroup cgroup rw,memory\n",
			self:      hybridSelf, mode: ModeHybrid, v1: []string{"cpu,cpuacct", "cpuset", "memory", "name=systemd"},
			unified: "/sys/fs/cgroup/unified",
		},
		{name: "none", root: "/sys/fs/cgroup", mountinfo: "22 1 0:21 / /sys rw - sysfs sysfs rw\n", wantErr: "no cgroup hierarchy"},
		{name: "bad self", root: "/sys/fs/cgroup", mountinfo: hybridMountinfo, self: "garbage\n", wantErr: "ID:CONTROLLERS:PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseLayout(tc.root, []byte(tc.mountinfo), []byte(tc.self))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.mode != tc.mode {
				t.Errorf("mode %v, want %v", l.mode, tc.mode)
			}
			var keys []string
			for _, h := range l.v1 {
				keys = append(keys, h.key())
				if want, ok := tc.v1own[h.controllers[0]]; ok && h.own != want {
					t.Errorf("%s own %q, want %q", h.key(), h.own, want)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.v1) && (len(keys) > 0 || len(tc.v1) > 0) {
				t.Errorf("v1 hierarchies %v, want %v", keys, tc.v1)
			}
			got := ""
			if l.unified != nil {
				got = l.unified.mount
			}
			if got != tc.unified {
				t.Errorf("unified %q, want %q", got, tc.unified)
			}
		})
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/mnt/other\040cg\011x`); got != "/mnt/other cg\tx" {
		t.Errorf("got %q", got)
	}
}

func TestInnerPathAndDirs(t *testing.T) {
	mem := hierarchy{controllers: []string{"memory"}, mount: "/cg/memory", root: "/", own: "/process_api/abc"}
	ns := hierarchy{controllers: []string{"pids"}, mount: "/cg/pids", root: "/outer", own: "/outer/me"}
	for _, tc := range []struct {
		name    string
		cfg     Config
		h       hierarchy
		want    string
		wantErr string
	}{
		{"absolute", Config{Path: "/a/b/../c"}, mem, "/cg/memory/a/c", ""},
		{"relative to own cgroup", Config{Path: "ctr"}, mem, "/cg/memory/process_api/abc/ctr", ""},
		{"relative under a mount of a sub-tree", Config{Path: "ctr"}, ns, "/cg/pids/me/ctr", ""},
		{"default from ID", Config{ID: "c1"}, mem, "/cg/memory/c1", ""},
		{"systemd form", Config{Path: "system.slice:estiba:c1"}, mem, "", "systemd cgroup driver is not supported"},
		{"escaping relative", Config{Path: "../x"}, mem, "", "must stay below"},
		{"root", Config{Path: "/"}, mem, "", "root cgroup"},
		{"bad ID", Config{ID: "a/b"}, mem, "", "single path element"},
		{"no ID", Config{}, mem, "", "single path element"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, err := innerPath(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dirIn(tc.h, inner); got != tc.want {
				t.Errorf("dir %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWeightConversions(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 0, 2: 1, 1024: 39, 262144: 10000} {
		if got := SharesToWeight(shares); got != want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 500: 4950, 1000: 10000} {
		if got := BlkioToIOWeight(w); got != want {
			t.Errorf("BlkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

// fakeHost builds a cgroup tree in a temp dir: the hierarchies' control
// files exist with plausible contents (the kernel creates them; writeFile
// never does), and a mountinfo that points at them. The container's cgroup
// is /ctr, pre-created with its files.
func fakeHost(t *testing.T, mode Mode) (*manager, string) {
	t.Helper()
	root := t.TempDir()
	var mi strings.Builder
	mount := func(n int, dir, fstype, opts string) {
		fmt.Fprintf(&mi, "%d 1 0:%d / %s rw - %s %s rw,%s\n", 100+n, 100+n, filepath.Join(root, dir), fstype, fstype, opts)
	}
	files := func(dir string, kv map[string]string) {
		for _, d := range []string{filepath.Join(root, dir), filepath.Join(root, dir, "ctr")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for f, v := range kv {
				if err := os.WriteFile(filepath.Join(d, f), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if mode == ModeV2 {
		mount(0, "", "cgroup2", "nsdelegate")
		files("", map[string]string{
			"cgroup.controllers": "cpuset cpu io memory hugetlb pids", "cgroup.subtree_control": "",
			"cgroup.procs": "", "cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0",
			"cpuset.cpus": "", "cpuset.mems": "", "memory.max": "max", "memory.swap.max": "max", "memory.low": "0",
			"memory.current": "1000", "pids.max": "max", "io.weight": "default 100", "io.max": "",
			"hugetlb.2MB.max": "max",
		})
	} else {
		mount(1, "cpu,cpuacct", "cgroup", "cpu,cpuacct")
		files("cpu,cpuacct", map[string]string{"cgroup.procs": "", "cpu.shares": "1024", "cpu.cfs_quota_us": "-1",
			"cpu.cfs_period_us": "100000", "cpu.cfs_burst_us": "0", "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0", "cpu.idle": "0"})
		mount(2, "cpuset", "cgroup", "cpuset")
		files("cpuset", map[string]string{"cgroup.procs": "", "cpuset.cpus": "0-1", "cpuset.mems": "0"})
		mount(3, "memory", "cgroup", "memory")
		files("memory", map[string]string{"cgroup.procs": "", "memory.limit_in_bytes": "9223372036854771712",
			"memory.memsw.limit_in_bytes": "9223372036854771712", "memory.soft_limit_in_bytes": "0",
			"memory.swappiness": "60", "memory.oom_control": "0", "memory.usage_in_bytes": "1000",
			"memory.use_hierarchy": "1", "memory.kmem.limit_in_bytes": "0"})
		mount(4, "pids", "cgroup", "pids")
		files("pids", map[string]string{"cgroup.procs": "", "pids.max": "max"})
		mount(5, "blkio", "cgroup", "blkio")
		files("blkio", map[string]string{"cgroup.procs": "", "blkio.bfq.weight": "100", "blkio.throttle.read_bps_device": ""})
		if mode == ModeHybrid {
			mount(6, "unified", "cgroup2", "")
			files("unified", map[string]string{"cgroup.controllers": "hugetlb", "cgroup.subtree_control": "",
				"cgroup.procs": "", "hugetlb.2MB.max": "max"})
		}
	}
	var warnings []string
	m, err := newFromHost(Config{Path: "/ctr", Root: root, Warn: func(s string) { warnings = append(warnings, s) }},
		[]byte(mi.String()), []byte("0::/\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode() != mode {
		t.Fatalf("fake host detected as %v, want %v", m.Mode(), mode)
	}
	return m, root
}

func TestSetFake(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    Mode
		r       specs.LinuxResources
		want    map[string]string // path below the fake root -> content
		wantErr string
	}{
		{name: "v1 cpu", mode: ModeV1,
			r: specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](20000), Period: ptr[uint64](50000),
				Burst: ptr[uint64](1000), RealtimePeriod: ptr[uint64](900000), RealtimeRuntime: ptr[int64](500), Idle: ptr[int64](1), Cpus: "1", Mems: "0"}},
			want: map[string]string{"cpu,cpuacct/ctr/cpu.shares": "512", "cpu,cpuacct/ctr/cpu.cfs_quota_us": "20000",
				"cpu,cpuacct/ctr/cpu.cfs_period_us": "50000", "cpu,cpuacct/ctr/cpu.cfs_burst_us": "1000",
				"cpu,cpuacct/ctr/cpu.rt_period_us": "900000", "cpu,cpuacct/ctr/cpu.rt_runtime_us": "500",
				"cpu,cpuacct/ctr/cpu.idle": "1", "cpuset/ctr/cpuset.cpus": "1", "cpuset/ctr/cpuset.mems": "0"}},
		{name: "v2 cpu", mode: ModeV2,
			r: specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](20000), Burst: ptr[uint64](5), Cpus: "0"}},
			want: map[string]string{"ctr/cpu.weight": "39", "ctr/cpu.max": "20000 100000", "ctr/cpu.max.burst": "5",
				"ctr/cpuset.cpus": "0", "cgroup.subtree_control": "+cpuset +cpu +io +memory +hugetlb +pids"}},
		{name: "v2 cpu period keeps quota", mode: ModeV2,
			r:    specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](20000)}},
			want: map[string]string{"ctr/cpu.max": "max 20000"}},
		{name: "v2 realtime", mode: ModeV2, r: specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](5)}}, wantErr: "not supported on cgroup v2"},
		{name: "v1 memory", mode: ModeV1,
			r: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20), Swap: ptr[int64](2 << 20), Reservation: ptr[int64](1 << 19),
				Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(true), Kernel: ptr[int64](1 << 20)}},
			want: map[string]string{"memory/ctr/memory.limit_in_bytes": "1048576", "memory/ctr/memory.memsw.limit_in_bytes": "2097152",
				"memory/ctr/memory.soft_limit_in_bytes": "524288", "memory/ctr/memory.swappiness": "10", "memory/ctr/memory.oom_control": "1"}},
		{name: "v2 memory", mode: ModeV2,
			r:    specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20), Swap: ptr[int64](3 << 20), Reservation: ptr[int64](4096)}},
			want: map[string]string{"ctr/memory.max": "1048576", "ctr/memory.swap.max": "2097152", "ctr/memory.low": "4096"}},
		{name: "v2 unlimited", mode: ModeV2,
			r:    specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](-1)}, Pids: &specs.LinuxPids{Limit: ptr[int64](0)}},
			want: map[string]string{"ctr/memory.max": "max", "ctr/memory.swap.max": "max", "ctr/pids.max": "max"}},
		{name: "v2 swap without limit", mode: ModeV2, r: specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr[int64](5)}}, wantErr: "needs a memory limit"},
		{name: "v2 oom killer", mode: ModeV2, r: specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: ptr(true)}}, wantErr: "not supported on cgroup v2"},
		{name: "v2 swappiness", mode: ModeV2, r: specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](5)}}, wantErr: "not supported on cgroup v2"},
		{name: "check before update", mode: ModeV1,
			r:       specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](10), CheckBeforeUpdate: ptr(true)}},
			wantErr: "below current usage"},
		{name: "pids", mode: ModeV1, r: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](7)}},
			want: map[string]string{"pids/ctr/pids.max": "7"}},
		{name: "v1 blkio", mode: ModeV1,
			r: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](300),
				ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}}}},
			want: map[string]string{"blkio/ctr/blkio.bfq.weight": "300", "blkio/ctr/blkio.throttle.read_bps_device": "8:0 1000"}},
		{name: "v1 leaf weight without CFQ", mode: ModeV1,
			r: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: ptr[uint16](300)}}, wantErr: "CFQ only"},
		{name: "v2 io", mode: ModeV2,
			r: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](500),
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 50}}}},
			want: map[string]string{"ctr/io.weight": "default 4950", "ctr/io.max": "8:16 wiops=50"}},
		{name: "weight out of range", mode: ModeV2, r: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](5)}}, wantErr: "out of range"},
		{name: "hybrid hugetlb via unified", mode: ModeHybrid,
			r:    specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 22}}},
			want: map[string]string{"unified/ctr/hugetlb.2MB.max": "4194304", "unified/cgroup.subtree_control": "+hugetlb"}},
		{name: "v1 hugetlb absent", mode: ModeV1,
			r: specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}}, wantErr: "hugetlb controller is not available on this v1"},
		{name: "bad page size", mode: ModeV2,
			r: specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2XB", Limit: 1}}}, wantErr: "want a number and KB"},
		{name: "network on v2", mode: ModeV2, r: specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}, wantErr: "net_cls"},
		{name: "rdma absent", mode: ModeV1,
			r: specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx": {HcaHandles: ptr[uint32](1)}}}, wantErr: "rdma controller is not available"},
		{name: "unified on v2", mode: ModeV2, r: specs.LinuxResources{Unified: map[string]string{"memory.low": "77"}},
			want: map[string]string{"ctr/memory.low": "77"}},
		{name: "unified on hybrid", mode: ModeHybrid, r: specs.LinuxResources{Unified: map[string]string{"hugetlb.2MB.max": "2097152"}},
			want: map[string]string{"unified/ctr/hugetlb.2MB.max": "2097152"}},
		{name: "unified on v1", mode: ModeV1, r: specs.LinuxResources{Unified: map[string]string{"memory.low": "1"}}, wantErr: "only v1 hierarchies"},
		{name: "unified escape", mode: ModeV2, r: specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, wantErr: "want a file name"},
		{name: "unified unknown", mode: ModeV2, r: specs.LinuxResources{Unified: map[string]string{"nope.max": "1"}}, wantErr: "no such file"},
		{name: "invalid input writes nothing", mode: ModeV1,
			r:       specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](7)}, CPU: &specs.LinuxCPU{Shares: ptr[uint64](1)}},
			want:    map[string]string{"pids/ctr/pids.max": "max"},
			wantErr: "cpu shares 1 out of range"},
		{name: "bad device rule", mode: ModeV1, r: specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}, wantErr: "want a, b or c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, root := fakeHost(t, tc.mode)
			err := m.Set(&tc.r)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			for f, want := range tc.want {
				got, err := os.ReadFile(filepath.Join(root, f))
				if err != nil {
					t.Error(err)
				} else if string(got) != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestPathsAndApplyFake(t *testing.T) {
	m, root := fakeHost(t, ModeHybrid)
	if err := m.Apply(1234); err != nil {
		t.Fatal(err)
	}
	p := m.Paths()
	if p["cpu"] != p["cpuacct"] || p["cpu"] != filepath.Join(root, "cpu,cpuacct/ctr") {
		t.Errorf("co-mounted cpu,cpuacct paths: %q %q", p["cpu"], p["cpuacct"])
	}
	if p[""] != filepath.Join(root, "unified/ctr") {
		t.Errorf("unified path %q", p[""])
	}
	for _, d := range []string{"memory/ctr", "cpuset/ctr", "unified/ctr"} {
		if got, _ := os.ReadFile(filepath.Join(root, d, "cgroup.procs")); string(got) != "1234" {
			t.Errorf("%s/cgroup.procs = %q", d, got)
		}
	}
	pids, err := m.Pids()
	if err != nil || fmt.Sprint(pids) != "[1234]" {
		t.Errorf("Pids() = %v, %v", pids, err)
	}
}

func TestDeviceRules(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		in      specs.LinuxDeviceCgroup
		v1      string
		wantErr string
	}{
		{specs.LinuxDeviceCgroup{Access: "rwm"}, "a", ""},
		{specs.LinuxDeviceCgroup{Type: "c", Major: n(1), Minor: n(3), Access: "wr"}, "c 1:3 rw", ""},
		{specs.LinuxDeviceCgroup{Type: "b", Major: n(8), Access: "m"}, "b 8:* m", ""},
		{specs.LinuxDeviceCgroup{Type: "c", Minor: n(-1)}, "c *:* rwm", ""},
		{specs.LinuxDeviceCgroup{Access: "rx"}, "", "letters from rwm"},
		{specs.LinuxDeviceCgroup{Access: "rr"}, "", "letters from rwm"},
		{specs.LinuxDeviceCgroup{Major: n(-2)}, "", "want -1"},
	} {
		r, err := parseDeviceRule(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%+v: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || r.v1String() != tc.v1 {
			t.Errorf("%+v: %q, %v; want %q", tc.in, r.v1String(), err, tc.v1)
		}
	}
}

func TestEffectiveRulesAndProgram(t *testing.T) {
	allowAll := deviceRule{allow: true, typ: 'a', major: -1, minor: -1, access: "rwm"}
	denyAll := allowAll
	denyAll.allow = false
	null := deviceRule{allow: true, typ: 'c', major: 1, minor: 3, access: "rwm"}
	zeroR := deviceRule{allow: true, typ: 'c', major: 1, minor: 5, access: "r"}
	for _, tc := range []struct {
		name  string
		rules []deviceRule
		def   bool
		rest  int
	}{
		{"empty denies", nil, false, 0},
		{"deny all then allows", []deviceRule{denyAll, null, zeroR}, false, 2},
		{"rules before the last wildcard are dead", []deviceRule{null, allowAll, zeroR, denyAll}, false, 0},
		{"allow all then rule", []deviceRule{allowAll, zeroR}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def, rest := effectiveRules(tc.rules)
			if def != tc.def || len(rest) != tc.rest {
				t.Errorf("default %v with %d rules, want %v with %d", def, len(rest), tc.def, tc.rest)
			}
			insns, err := deviceProgram(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			// Every jump lands inside the program, and it ends in exit.
			for i, in := range insns {
				if (in.op == opJneImm || in.op == opJneReg) && (in.off < 0 || i+1+int(in.off) >= len(insns)) {
					t.Errorf("instruction %d jumps out of the program: %v", i, insns)
				}
			}
			if last := insns[len(insns)-1]; last.op != opExit {
				t.Errorf("program ends in %v, not exit", last)
			}
		})
	}
}

func TestV1Exceptions(t *testing.T) {
	rule := func(allow bool, typ byte, maj, min int64, acc string) deviceRule {
		return deviceRule{allow: allow, typ: typ, major: maj, minor: min, access: acc}
	}
	denyAll := rule(false, 'a', -1, -1, "rwm")
	allowAll := rule(true, 'a', -1, -1, "rwm")
	for _, tc := range []struct {
		name    string
		rules   []deviceRule
		def     bool
		want    []string
		wantErr string
	}{
		{"allows", []deviceRule{denyAll, rule(true, 'c', 1, 3, "rwm"), rule(true, 'c', 136, -1, "rw")}, false, []string{"c 1:3 rwm", "c 136:* rw"}, ""},
		{"later deny removes access", []deviceRule{denyAll, rule(true, 'c', 1, 5, "rwm"), rule(false, 'c', 1, 5, "w")}, false, []string{"c 1:5 rm"}, ""},
		{"wider later deny removes all", []deviceRule{denyAll, rule(true, 'c', 1, 5, "rw"), rule(false, 'c', -1, -1, "rwm")}, false, nil, ""},
		{"deny unrelated", []deviceRule{denyAll, rule(true, 'c', 1, 5, "r"), rule(false, 'c', 1, 5, "w")}, false, []string{"c 1:5 r"}, ""},
		{"allow default", []deviceRule{allowAll, rule(false, 'b', 8, 0, "w")}, true, []string{"b 8:0 w"}, ""},
		{"hole in a wider allow", []deviceRule{denyAll, rule(true, 'c', 136, -1, "rwm"), rule(false, 'c', 136, 5, "rwm")}, false, nil, "cannot be expressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def, exc, err := v1Exceptions(tc.rules)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range exc {
				got = append(got, e.v1String())
			}
			if def != tc.def || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("default allow=%v %q, want %v %q", def, got, tc.def, tc.want)
			}
		})
	}
}
