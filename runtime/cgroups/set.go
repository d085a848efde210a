package cgroups

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Names maps v1 controller names to their cgroup2 names where they differ.
var v2Names = map[string]string{"blkio": "io"}

// dirFor finds where controller ctrl's knobs live: its v1 hierarchy if
// mounted, else the cgroup2 directory if the controller is enabled there.
func (m *manager) dirFor(ctrl string) (dir string, v2 bool, err error) {
	if d, ok := m.v1[ctrl]; ok {
		return d, false, nil
	}
	if m.v2 != "" {
		name := ctrl
		if n, ok := v2Names[ctrl]; ok {
			name = n
		}
		avail, err := readFile(m.v2, "cgroup.controllers")
		if err != nil {
			return "", false, err
		}
		if slices.Contains(strings.Fields(avail), name) {
			return m.v2, true, nil
		}
	}
	return "", false, fmt.Errorf("the %s controller is not available on this %s cgroup host", ctrl, m.layout.mode)
}

// Set validates all of r before writing anything, so bad input changes
// nothing; then it writes each resource group. A kernel refusal midway
// leaves the groups before it applied (the kernel has no transactions).
func (m *manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validate(r); err != nil {
		return fmt.Errorf("cgroups: invalid resources: %w", err)
	}
	if err := m.create(); err != nil {
		return err
	}
	steps := []struct {
		name string
		set  func(*specs.LinuxResources) error
	}{
		{"cpu", m.setCPU}, {"cpuset", m.setCpuset}, {"memory", m.setMemory},
		{"pids", m.setPids}, {"blockIO", m.setBlockIO}, {"hugepageLimits", m.setHugepages},
		{"network", m.setNetwork}, {"rdma", m.setRdma}, {"devices", m.setDevices},
		// Unified last: its raw writes are meant to override the above.
		{"unified", m.setUnified},
	}
	for _, s := range steps {
		if err := s.set(r); err != nil {
			return fmt.Errorf("cgroups: set %s: %w", s.name, err)
		}
	}
	return nil
}

// validate checks what can be checked without the kernel.
func validate(r *specs.LinuxResources) error {
	var errs []error
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 && (*c.Shares < 2 || *c.Shares > 262144) {
			errs = append(errs, fmt.Errorf("cpu shares %d out of range [2, 262144]", *c.Shares))
		}
		if c.Quota != nil && *c.Quota < -1 {
			errs = append(errs, fmt.Errorf("cpu quota %d: want -1 (unlimited) or positive", *c.Quota))
		}
		if c.Period != nil && *c.Period != 0 && (*c.Period < 1000 || *c.Period > 1000000) {
			errs = append(errs, fmt.Errorf("cpu period %d out of range [1000, 1000000] µs", *c.Period))
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime < -1 {
			errs = append(errs, fmt.Errorf("cpu realtimeRuntime %d: want -1 or non-negative", *c.RealtimeRuntime))
		}
		if c.Idle != nil && *c.Idle != 0 && *c.Idle != 1 {
			errs = append(errs, fmt.Errorf("cpu idle %d: want 0 or 1", *c.Idle))
		}
	}
	if mem := r.Memory; mem != nil {
		for _, f := range []struct {
			name string
			v    *int64
		}{{"limit", mem.Limit}, {"reservation", mem.Reservation}, {"swap", mem.Swap}, {"kernel", mem.Kernel}, {"kernelTCP", mem.KernelTCP}} {
			if f.v != nil && *f.v < -1 {
				errs = append(errs, fmt.Errorf("memory %s %d: want -1 (unlimited) or non-negative", f.name, *f.v))
			}
		}
		if mem.Limit != nil && mem.Swap != nil && *mem.Limit > 0 && *mem.Swap > 0 && *mem.Swap < *mem.Limit {
			errs = append(errs, fmt.Errorf("memory swap %d is below limit %d: swap is memory+swap, so at least the limit", *mem.Swap, *mem.Limit))
		}
		if mem.Swappiness != nil && *mem.Swappiness > 100 {
			errs = append(errs, fmt.Errorf("memory swappiness %d out of range [0, 100]", *mem.Swappiness))
		}
	}
	if b := r.BlockIO; b != nil {
		errs = append(errs, validateWeight("weight", b.Weight))
		errs = append(errs, validateWeight("leafWeight", b.LeafWeight))
		for _, d := range b.WeightDevice {
			errs = append(errs, validateWeight("weightDevice weight", d.Weight))
			errs = append(errs, validateWeight("weightDevice leafWeight", d.LeafWeight))
		}
	}
	for _, h := range r.HugepageLimits {
		if _, err := hugePageName(h.Pagesize); err != nil {
			errs = append(errs, err)
		}
	}
	for k := range r.Unified {
		if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			errs = append(errs, fmt.Errorf("unified key %q: want a file name in the cgroup directory", k))
		}
	}
	for _, d := range r.Devices {
		if _, err := parseDeviceRule(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validateWeight(name string, w *uint16) error {
	if w != nil && *w != 0 && (*w < 10 || *w > 1000) {
		return fmt.Errorf("blockIO %s %d out of range [10, 1000]", name, *w)
	}
	return nil
}

func itoa(v int64) string   { return strconv.FormatInt(v, 10) }
func utoa(v uint64) string  { return strconv.FormatUint(v, 10) }
func set64(p *int64) bool   { return p != nil && *p != 0 }
func setU64(p *uint64) bool { return p != nil && *p != 0 }

// maxOr formats a v2 limit where -1 means "max".
func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return itoa(v)
}
