package cgroups

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (m *manager) setBlockIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil || (b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 &&
		len(b.ThrottleReadBpsDevice) == 0 && len(b.ThrottleWriteBpsDevice) == 0 &&
		len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0) {
		return nil
	}
	dir, v2, err := m.dirFor("blkio")
	if err != nil {
		return err
	}
	if v2 {
		return setIOv2(dir, b)
	}
	return setBlkioV1(dir, b)
}

// weightFileV1 picks the v1 weight knob: CFQ's blkio.weight on old kernels,
// BFQ's blkio.bfq.weight on new ones; neither exists without those schedulers.
func weightFileV1(dir, knob string) (string, error) {
	for _, f := range []string{"blkio." + knob, "blkio.bfq." + knob} {
		if fileExists(dir, f) {
			return f, nil
		}
	}
	return "", fmt.Errorf("blockIO %s: the kernel has no blkio.%s (needs the CFQ or BFQ I/O scheduler)", knob, knob)
}

func setBlkioV1(dir string, b *specs.LinuxBlockIO) error {
	if b.Weight != nil && *b.Weight != 0 {
		f, err := weightFileV1(dir, "weight")
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, utoa(uint64(*b.Weight))); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeFile(dir, "blkio.leaf_weight", utoa(uint64(*b.LeafWeight))); err != nil {
			return fmt.Errorf("blockIO leafWeight (CFQ only): %w", err)
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight != nil {
			f, err := weightFileV1(dir, "weight_device")
			if err != nil {
				return err
			}
			if err := writeFile(dir, f, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight)); err != nil {
				return err
			}
		}
		if d.LeafWeight != nil {
			if err := writeFile(dir, "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.LeafWeight)); err != nil {
				return fmt.Errorf("blockIO weightDevice leafWeight (CFQ only): %w", err)
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := writeFile(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// BlkioToIOWeight converts a v1 blkio weight [10, 1000] to v2 io.weight
// [1, 10000] linearly, as runc and crun do.
func BlkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

func setIOv2(dir string, b *specs.LinuxBlockIO) error {
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		return errors.New("blockIO leafWeight: not supported on cgroup v2")
	}
	// BFQ's io.bfq.weight takes v1's range; io.weight (the cost model) the v2 one.
	wfile, conv := "io.weight", BlkioToIOWeight
	if fileExists(dir, "io.bfq.weight") {
		wfile, conv = "io.bfq.weight", func(w uint16) uint64 { return uint64(w) }
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(dir, wfile, "default "+utoa(conv(*b.Weight))); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.LeafWeight != nil && *d.LeafWeight != 0 {
			return errors.New("blockIO weightDevice leafWeight: not supported on cgroup v2")
		}
		if d.Weight != nil {
			if err := writeFile(dir, wfile, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, conv(*d.Weight))); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			// io.max takes one device and any subset of keys per write; 0 means no limit.
			v := utoa(d.Rate)
			if d.Rate == 0 {
				v = "max"
			}
			if err := writeFile(dir, "io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, v)); err != nil {
				return err
			}
		}
	}
	return nil
}
