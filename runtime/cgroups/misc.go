package cgroups

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hugePageName turns the spec's page size ("2MB", "1GB", "64KB") into the
// kernel's name in hugetlb.<name>.* files, checking the format.
func hugePageName(size string) (string, error) {
	num := strings.TrimRight(size, "KMGB")
	unit := strings.TrimPrefix(size, num)
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 || (unit != "KB" && unit != "MB" && unit != "GB") {
		return "", fmt.Errorf("hugepage size %q: want a number and KB, MB or GB, as in 2MB", size)
	}
	return size, nil
}

// setHugepages writes hugetlb limits: v1 hugetlb.<size>.limit_in_bytes, or
// v2 hugetlb.<size>.max. On our hybrid hosts the v1 hugetlb hierarchy is
// absent and the controller lives on the cgroup2 mount: dirFor finds it.
func (m *manager) setHugepages(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	dir, v2, err := m.dirFor("hugetlb")
	if err != nil {
		return err
	}
	for _, h := range r.HugepageLimits {
		name, _ := hugePageName(h.Pagesize) // validated
		file := "hugetlb." + name + ".limit_in_bytes"
		if v2 {
			file = "hugetlb." + name + ".max"
		}
		if !fileExists(dir, file) {
			return fmt.Errorf("hugepage size %s not supported by this kernel (no %s)", h.Pagesize, file)
		}
		if err := writeFile(dir, file, utoa(h.Limit)); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil || (n.ClassID == nil && len(n.Priorities) == 0) {
		return nil
	}
	if n.ClassID != nil {
		dir, ok := m.v1["net_cls"]
		if !ok {
			return fmt.Errorf("network classID: needs the v1 net_cls controller, not mounted on this %s host (cgroup v2 has none)", m.layout.mode)
		}
		if err := writeFile(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return err
		}
	}
	if len(n.Priorities) > 0 {
		dir, ok := m.v1["net_prio"]
		if !ok {
			return fmt.Errorf("network priorities: need the v1 net_prio controller, not mounted on this %s host (cgroup v2 has none)", m.layout.mode)
		}
		// ifpriomap takes one "IFNAME PRIO" per write.
		for _, p := range n.Priorities {
			if err := writeFile(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *manager) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	dir, _, err := m.dirFor("rdma")
	if err != nil {
		return err
	}
	devs := make([]string, 0, len(r.Rdma))
	for d := range r.Rdma {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		l := r.Rdma[d]
		if l.HcaHandles == nil && l.HcaObjects == nil {
			continue
		}
		// Same "DEV hca_handle=N hca_object=N" format on v1 and v2.
		line := d
		if l.HcaHandles != nil {
			line += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			line += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		if err := writeFile(dir, "rdma.max", line); err != nil {
			return err
		}
	}
	return nil
}

// setUnified writes linux.resources.unified as-is into the cgroup2
// directory (on hybrid hosts, the unified mount's).
func (m *manager) setUnified(r *specs.LinuxResources) error {
	if len(r.Unified) == 0 {
		return nil
	}
	if m.v2 == "" {
		return errors.New("unified resources need cgroup v2, and this host has only v1 hierarchies")
	}
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fileExists(m.v2, k) {
			return fmt.Errorf("unified %q: no such file in %s (controller not enabled here?)", k, m.v2)
		}
		if err := writeFile(m.v2, k, r.Unified[k]); err != nil {
			return err
		}
	}
	return nil
}
