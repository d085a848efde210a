package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// update takes runc's flags, or -r resources.json ("-" for stdin).
func (a *app) update(args []string) error {
	fs := flags("update")
	resFile := fs.String("resources", "", "resources JSON file, - for stdin")
	fs.StringVar(resFile, "r", "", "resources JSON file, - for stdin")
	ints := map[string]*string{}
	for _, n := range []string{"blkio-weight", "cpu-period", "cpu-quota", "cpu-share", "cpu-rt-period",
		"cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "memory", "memory-reservation", "memory-swap",
		"pids-limit", "kernel-memory", "kernel-memory-tcp", "l3-cache-schema", "mem-bw-schema"} {
		ints[n] = fs.String(n, "", n)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	res := &specs.LinuxResources{}
	if *resFile != "" {
		if res, err = readResources(*resFile); err != nil {
			return err
		}
	}
	if err := applyUpdateFlags(fs, ints, res); err != nil {
		return err
	}
	return a.rt.Update(id, res)
}

func readResources(path string) (*specs.LinuxResources, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("resources: %w", err)
		}
		defer f.Close()
		r = f
	}
	var res specs.LinuxResources
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return nil, fmt.Errorf("decode resources: %w", err)
	}
	return &res, nil
}

func applyUpdateFlags(fs *flag.FlagSet, vals map[string]*string, res *specs.LinuxResources) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil || f.Name == "r" || f.Name == "resources" {
			return
		}
		err = applyUpdateFlag(f.Name, *vals[f.Name], res)
	})
	return err
}

func applyUpdateFlag(name, v string, res *specs.LinuxResources) error {
	cpu := func() *specs.LinuxCPU {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		return res.CPU
	}
	mem := func() *specs.LinuxMemory {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		return res.Memory
	}
	var n int64
	if name != "cpuset-cpus" && name != "cpuset-mems" {
		var err error
		if n, err = parseSize(v); err != nil {
			return fmt.Errorf("--%s %q: %w", name, v, err)
		}
	}
	u := uint64(n)
	switch name {
	case "blkio-weight":
		w := uint16(n)
		res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	case "cpu-period":
		cpu().Period = &u
	case "cpu-quota":
		cpu().Quota = &n
	case "cpu-share":
		cpu().Shares = &u
	case "cpu-rt-period":
		cpu().RealtimePeriod = &u
	case "cpu-rt-runtime":
		cpu().RealtimeRuntime = &n
	case "cpuset-cpus":
		cpu().Cpus = v
	case "cpuset-mems":
		cpu().Mems = v
	case "memory":
		mem().Limit = &n
	case "memory-reservation":
		mem().Reservation = &n
	case "memory-swap":
		mem().Swap = &n
	case "pids-limit":
		res.Pids = &specs.LinuxPids{Limit: &n}
	default:
		return fmt.Errorf("--%s is not supported", name)
	}
	return nil
}

// parseSize reads a number with an optional k/m/g suffix (powers of 1024).
func parseSize(v string) (int64, error) {
	mult := int64(1)
	s := strings.ToLower(strings.TrimSuffix(strings.ToLower(v), "b"))
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}
