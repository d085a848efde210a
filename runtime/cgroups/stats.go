package cgroups

import (
	"fmt"
	"strconv"
	"strings"
)

// userHZ is the unit of cpuacct.stat: clock ticks of USER_HZ, which the
// kernel ABI fixes at 100 on every architecture we run on.
const userHZ = 100

// Stats reads the counters of every controller the host has; those it lacks
// stay zero.
func (m *manager) Stats() (*Stats, error) {
	s := &Stats{}
	for _, step := range []struct {
		ctrl string
		v1   func(string, *Stats) error
		v2   func(string, *Stats) error
	}{
		{"cpu", cpuStatsV1, cpuStatsV2},
		{"cpuacct", cpuacctStatsV1, nil},
		{"memory", memoryStatsV1, memoryStatsV2},
		{"pids", pidsStats, pidsStats},
		{"blkio", ioStatsV1, ioStatsV2},
	} {
		dir, v2, err := m.dirFor(step.ctrl)
		if err != nil {
			if step.ctrl == "cpu" && m.v2 != "" {
				// cpu.stat's usage lines are core v2 files, present without
				// the cpu controller.
				dir, v2 = m.v2, true
			} else {
				continue
			}
		}
		fn := step.v1
		if v2 {
			fn = step.v2
		}
		if fn == nil {
			continue
		}
		if err := fn(dir, s); err != nil {
			return nil, fmt.Errorf("cgroups: stats: %w", err)
		}
	}
	return s, nil
}

func cpuStatsV1(dir string, s *Stats) error {
	kv, err := readKeyValues(dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledNanos = kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]
	return nil
}

func cpuacctStatsV1(dir string, s *Stats) error {
	usage, err := readUint(dir, "cpuacct.usage")
	if err != nil {
		return err
	}
	kv, err := readKeyValues(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	const tick = 1e9 / userHZ
	s.CPU.UsageNanos, s.CPU.UserNanos, s.CPU.SystemNanos = usage, kv["user"]*tick, kv["system"]*tick
	return nil
}

func cpuStatsV2(dir string, s *Stats) error {
	kv, err := readKeyValues(dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU = CPUStats{
		UsageNanos: kv["usage_usec"] * 1000, UserNanos: kv["user_usec"] * 1000, SystemNanos: kv["system_usec"] * 1000,
		Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledNanos: kv["throttled_usec"] * 1000,
	}
	return nil
}

// readUints reads several one-number files; missing ones (a knob the kernel
// lacks, such as swap without swap accounting) read as 0.
func readUints(dir string, files map[string]*uint64) error {
	for f, dst := range files {
		if !fileExists(dir, f) {
			continue
		}
		v, err := readUint(dir, f)
		if err != nil {
			return err
		}
		*dst = v
	}
	return nil
}

func memoryStatsV1(dir string, s *Stats) error {
	mem := &s.Memory
	var memswUsage uint64
	err := readUints(dir, map[string]*uint64{
		"memory.usage_in_bytes": &mem.Usage, "memory.max_usage_in_bytes": &mem.MaxUsage,
		"memory.limit_in_bytes": &mem.Limit, "memory.memsw.usage_in_bytes": &memswUsage,
		"memory.memsw.limit_in_bytes": &mem.SwapLimit,
	})
	if err != nil {
		return err
	}
	if memswUsage > mem.Usage {
		mem.SwapUsage = memswUsage - mem.Usage
	}
	st, err := readKeyValues(dir, "memory.stat")
	if err != nil {
		return err
	}
	mem.Cache = st["total_cache"]
	oom, err := readKeyValues(dir, "memory.oom_control")
	if err != nil {
		return err
	}
	mem.OOMKills = oom["oom_kill"]
	return nil
}

func memoryStatsV2(dir string, s *Stats) error {
	mem := &s.Memory
	err := readUints(dir, map[string]*uint64{
		"memory.current": &mem.Usage, "memory.peak": &mem.MaxUsage, "memory.max": &mem.Limit,
		"memory.swap.current": &mem.SwapUsage, "memory.swap.max": &mem.SwapLimit,
	})
	if err != nil {
		return err
	}
	st, err := readKeyValues(dir, "memory.stat")
	if err != nil {
		return err
	}
	mem.Cache = st["file"]
	ev, err := readKeyValues(dir, "memory.events")
	if err != nil {
		return err
	}
	mem.OOMKills = ev["oom_kill"]
	return nil
}

func pidsStats(dir string, s *Stats) error {
	return readUints(dir, map[string]*uint64{"pids.current": &s.Pids.Current, "pids.max": &s.Pids.Limit})
}

// ioStatsV1 sums the throttle layer's per-device counters, which exist
// whatever the I/O scheduler: lines "MAJ:MIN Read|Write|Sync|Async|Discard|Total N".
func ioStatsV1(dir string, s *Stats) error {
	byDev := map[[2]uint64]*IOEntry{}
	var order [][2]uint64
	for _, f := range []struct {
		file        string
		read, write func(*IOEntry) *uint64
	}{
		{"blkio.throttle.io_service_bytes_recursive", func(e *IOEntry) *uint64 { return &e.ReadBytes }, func(e *IOEntry) *uint64 { return &e.WriteBytes }},
		{"blkio.throttle.io_serviced_recursive", func(e *IOEntry) *uint64 { return &e.ReadIOs }, func(e *IOEntry) *uint64 { return &e.WriteIOs }},
	} {
		if !fileExists(dir, f.file) {
			continue
		}
		text, err := readFile(dir, f.file)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(text, "\n") {
			fs := strings.Fields(line)
			if len(fs) != 3 {
				continue
			}
			dev, ok := parseDev(fs[0])
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(fs[2], 10, 64)
			if err != nil {
				continue
			}
			e := byDev[dev]
			if e == nil {
				e = &IOEntry{Major: dev[0], Minor: dev[1]}
				byDev[dev] = e
				order = append(order, dev)
			}
			switch fs[1] {
			case "Read":
				*f.read(e) = v
			case "Write":
				*f.write(e) = v
			}
		}
	}
	for _, d := range order {
		s.IO = append(s.IO, *byDev[d])
	}
	return nil
}

// ioStatsV2 parses io.stat lines "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...".
func ioStatsV2(dir string, s *Stats) error {
	if !fileExists(dir, "io.stat") {
		return nil
	}
	text, err := readFile(dir, "io.stat")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(text, "\n") {
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		dev, ok := parseDev(fs[0])
		if !ok {
			continue
		}
		e := IOEntry{Major: dev[0], Minor: dev[1]}
		for _, kv := range fs[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				e.ReadBytes = n
			case "wbytes":
				e.WriteBytes = n
			case "rios":
				e.ReadIOs = n
			case "wios":
				e.WriteIOs = n
			}
		}
		s.IO = append(s.IO, e)
	}
	return nil
}

func parseDev(s string) ([2]uint64, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return [2]uint64{}, false
	}
	maj, err1 := strconv.ParseUint(a, 10, 64)
	min, err2 := strconv.ParseUint(b, 10, 64)
	return [2]uint64{maj, min}, err1 == nil && err2 == nil
}
