package cgroups

import (
	"errors"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (m *manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (!setU64(c.Shares) && !set64(c.Quota) && !setU64(c.Period) && !setU64(c.Burst) &&
		!set64(c.RealtimeRuntime) && !setU64(c.RealtimePeriod) && c.Idle == nil) {
		return nil
	}
	dir, v2, err := m.dirFor("cpu")
	if err != nil {
		return err
	}
	if v2 {
		return setCPUv2(dir, c)
	}
	return setCPUv1(dir, c)
}

func setCPUv1(dir string, c *specs.LinuxCPU) error {
	if setU64(c.Shares) {
		if err := writeFile(dir, "cpu.shares", utoa(*c.Shares)); err != nil {
			return err
		}
	}
	// The realtime period must be in place before a runtime that fits it.
	if setU64(c.RealtimePeriod) {
		if err := writeFile(dir, "cpu.rt_period_us", utoa(*c.RealtimePeriod)); err != nil {
			return err
		}
	}
	if set64(c.RealtimeRuntime) {
		if err := writeFile(dir, "cpu.rt_runtime_us", itoa(*c.RealtimeRuntime)); err != nil {
			return fmt.Errorf("%w (the parent cgroup must have at least this much realtime runtime)", err)
		}
	}
	if err := setQuotaPeriodV1(dir, c); err != nil {
		return err
	}
	// The kernel checks burst against the quota, so it goes after it.
	if setU64(c.Burst) {
		if err := writeFile(dir, "cpu.cfs_burst_us", utoa(*c.Burst)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		return writeFile(dir, "cpu.idle", itoa(*c.Idle))
	}
	return nil
}

// setQuotaPeriodV1 writes period then quota; the kernel may refuse the new
// period against the old quota (hierarchical bandwidth), then quota first.
func setQuotaPeriodV1(dir string, c *specs.LinuxCPU) error {
	period := func() error {
		if setU64(c.Period) {
			return writeFile(dir, "cpu.cfs_period_us", utoa(*c.Period))
		}
		return nil
	}
	quota := func() error {
		if set64(c.Quota) {
			return writeFile(dir, "cpu.cfs_quota_us", itoa(*c.Quota))
		}
		return nil
	}
	if err := period(); err != nil {
		if qerr := quota(); qerr != nil {
			return errors.Join(err, qerr)
		}
		return period()
	}
	return quota()
}

func setCPUv2(dir string, c *specs.LinuxCPU) error {
	if setU64(c.Shares) {
		if err := writeFile(dir, "cpu.weight", utoa(SharesToWeight(*c.Shares))); err != nil {
			return err
		}
	}
	if set64(c.RealtimeRuntime) || setU64(c.RealtimePeriod) {
		return errors.New("realtime runtime/period: not supported on cgroup v2 (the kernel has no v2 knob for it)")
	}
	if set64(c.Quota) || setU64(c.Period) {
		v, err := cpuMax(dir, c)
		if err != nil {
			return err
		}
		if err := writeFile(dir, "cpu.max", v); err != nil {
			return err
		}
	}
	if setU64(c.Burst) {
		if err := writeFile(dir, "cpu.max.burst", utoa(*c.Burst)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		return writeFile(dir, "cpu.idle", itoa(*c.Idle))
	}
	return nil
}

// cpuMax builds cpu.max "QUOTA PERIOD", keeping the current half that c
// leaves unset (cpu.max takes both at once).
func cpuMax(dir string, c *specs.LinuxCPU) (string, error) {
	cur, err := readFile(dir, "cpu.max")
	if err != nil {
		return "", err
	}
	quota, period, _ := strings.Cut(cur, " ")
	if set64(c.Quota) {
		quota = maxOr(*c.Quota)
	}
	if setU64(c.Period) {
		period = utoa(*c.Period)
	}
	if period == "" {
		period = "100000"
	}
	return quota + " " + period, nil
}

// SharesToWeight converts cgroup v1 cpu.shares [2, 262144] to cgroup v2
// cpu.weight [1, 10000] linearly, as runc and crun do, so the same spec
// gives the same weight under every runtime. 0 stays 0 (unset).
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

func (m *manager) setCpuset(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Cpus == "" && c.Mems == "") {
		return nil
	}
	dir, _, err := m.dirFor("cpuset")
	if err != nil {
		return err
	}
	// On v1, create() already filled the parents' cpus and mems (a child
	// can only hold a subset of its parent's).
	if c.Cpus != "" {
		if err := writeFile(dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		return writeFile(dir, "cpuset.mems", c.Mems)
	}
	return nil
}
