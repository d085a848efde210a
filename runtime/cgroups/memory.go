package cgroups

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (m *manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	dir, v2, err := m.dirFor("memory")
	if err != nil {
		return err
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && set64(mem.Limit) && *mem.Limit > 0 {
		if err := checkUsage(dir, v2, *mem.Limit); err != nil {
			return err
		}
	}
	if v2 {
		return m.setMemoryV2(dir, mem)
	}
	return m.setMemoryV1(dir, mem)
}

// checkUsage refuses a limit below the current usage instead of letting the
// kernel reclaim or OOM-kill to reach it (checkBeforeUpdate).
func checkUsage(dir string, v2 bool, limit int64) error {
	file := "memory.usage_in_bytes"
	if v2 {
		file = "memory.current"
	}
	usage, err := readUint(dir, file)
	if err != nil {
		return err
	}
	if uint64(limit) < usage {
		return fmt.Errorf("memory limit %d is below current usage %d (checkBeforeUpdate)", limit, usage)
	}
	return nil
}

func (m *manager) setMemoryV1(dir string, mem *specs.LinuxMemory) error {
	if err := setLimitSwapV1(dir, mem); err != nil {
		return err
	}
	if set64(mem.Reservation) {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", itoa(*mem.Reservation)); err != nil {
			return err
		}
	}
	// Kernel memory limits are deprecated and refused by kernels >= 6.1;
	// the spec marks them so, and runtimes skip them with a warning.
	if set64(mem.Kernel) {
		if err := writeFile(dir, "memory.kmem.limit_in_bytes", itoa(*mem.Kernel)); err != nil {
			m.warn("ignoring deprecated memory.kernel limit: %v", err)
		}
	}
	if set64(mem.KernelTCP) {
		if err := writeFile(dir, "memory.kmem.tcp.limit_in_bytes", itoa(*mem.KernelTCP)); err != nil {
			m.warn("ignoring deprecated memory.kernelTCP limit: %v", err)
		}
	}
	if mem.Swappiness != nil {
		if err := writeFile(dir, "memory.swappiness", utoa(*mem.Swappiness)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		if err := writeFile(dir, "memory.oom_control", boolDigit(*mem.DisableOOMKiller)); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		if err := writeFile(dir, "memory.use_hierarchy", boolDigit(*mem.UseHierarchy)); err != nil {
			return fmt.Errorf("%w (kernels since 5.x always use the hierarchy)", err)
		}
	}
	return nil
}

// setLimitSwapV1 writes memory.limit_in_bytes and memory.memsw.limit_in_bytes.
// The kernel keeps limit <= memsw at every moment: raising both needs memsw
// first, lowering both needs the limit first. Try one order, then the other.
func setLimitSwapV1(dir string, mem *specs.LinuxMemory) error {
	limit := func() error {
		if set64(mem.Limit) {
			return writeFile(dir, "memory.limit_in_bytes", itoa(*mem.Limit))
		}
		return nil
	}
	swap := func() error {
		if !set64(mem.Swap) {
			return nil
		}
		if !fileExists(dir, "memory.memsw.limit_in_bytes") {
			return errors.New("memory swap limit: swap accounting is off in this kernel (no memory.memsw.limit_in_bytes)")
		}
		return writeFile(dir, "memory.memsw.limit_in_bytes", itoa(*mem.Swap))
	}
	if err := limit(); err != nil {
		if serr := swap(); serr != nil {
			return errors.Join(err, serr)
		}
		return limit()
	}
	return swap()
}

func (m *manager) setMemoryV2(dir string, mem *specs.LinuxMemory) error {
	switch {
	case mem.Swappiness != nil:
		return errors.New("memory swappiness: not supported on cgroup v2 (no per-cgroup knob)")
	case mem.DisableOOMKiller != nil && *mem.DisableOOMKiller:
		return errors.New("disableOOMKiller: not supported on cgroup v2 (no per-cgroup OOM killer switch)")
	case mem.UseHierarchy != nil && !*mem.UseHierarchy:
		return errors.New("useHierarchy=false: cgroup v2 is always hierarchical")
	}
	if set64(mem.Kernel) || set64(mem.KernelTCP) {
		m.warn("ignoring deprecated memory.kernel/kernelTCP limits: cgroup v2 accounts kernel memory in memory.max")
	}
	swap, err := swapV2(mem)
	if err != nil {
		return err
	}
	if set64(mem.Limit) {
		if err := writeFile(dir, "memory.max", maxOr(*mem.Limit)); err != nil {
			return err
		}
	}
	if swap != "" {
		if !fileExists(dir, "memory.swap.max") {
			return errors.New("memory swap limit: swap accounting is off in this kernel (no memory.swap.max)")
		}
		if err := writeFile(dir, "memory.swap.max", swap); err != nil {
			return err
		}
	}
	if set64(mem.Reservation) {
		return writeFile(dir, "memory.low", maxOr(*mem.Reservation))
	}
	return nil
}

// swapV2 converts the spec's memory+swap limit to v2's swap-only
// memory.swap.max ("" when unset).
func swapV2(mem *specs.LinuxMemory) (string, error) {
	if !set64(mem.Swap) {
		return "", nil
	}
	if *mem.Swap == -1 {
		return "max", nil
	}
	if !set64(mem.Limit) || *mem.Limit == -1 {
		return "", fmt.Errorf("memory swap %d needs a memory limit: on cgroup v2 swap is limited as swap minus limit", *mem.Swap)
	}
	return itoa(*mem.Swap - *mem.Limit), nil
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (m *manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	dir, _, err := m.dirFor("pids")
	if err != nil {
		return err
	}
	v := "max"
	if *r.Pids.Limit > 0 {
		v = itoa(*r.Pids.Limit)
	}
	return writeFile(dir, "pids.max", v)
}
