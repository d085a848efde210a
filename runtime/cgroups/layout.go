package cgroups

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Mode is the cgroup layout of a host.
type Mode int

const (
	// ModeV1 has only per-controller v1 hierarchies.
	ModeV1 Mode = iota + 1
	// ModeHybrid has v1 hierarchies plus a cgroup2 mount (usually
	// <root>/unified) that may hold controllers v1 does not, such as
	// hugetlb on our CI machines.
	ModeHybrid
	// ModeV2 has one cgroup2 mount at the root.
	ModeV2
)

func (m Mode) String() string {
	switch m {
	case ModeV1:
		return "v1"
	case ModeHybrid:
		return "hybrid"
	case ModeV2:
		return "v2"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	// controllers of a v1 hierarchy ("cpu", "cpuacct", or "name=systemd");
	// empty for cgroup2.
	controllers []string
	mount       string // where it is mounted
	root        string // the cgroup the mount shows as its root (mountinfo field 4)
	// own is this process's cgroup in the hierarchy, from /proc/self/cgroup.
	own string
}

func (h hierarchy) key() string { return strings.Join(h.controllers, ",") }

// layout is what New found on the host: which hierarchies exist under Root.
type layout struct {
	mode    Mode
	v1      []hierarchy // sorted by key
	unified *hierarchy  // the cgroup2 mount, if any
}

// v1Controllers are the controller names a v1 cgroup mount option may carry;
// every other option (rw, relatime, clone_children, xattr...) is not one.
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
	"freezer": true, "net_cls": true, "net_prio": true, "blkio": true,
	"perf_event": true, "hugetlb": true, "pids": true, "rdma": true, "misc": true,
	"debug": true,
}

// parseLayout finds the cgroup mounts under root in a /proc/self/mountinfo
// text and attaches this process's own cgroups from a /proc/self/cgroup text.
func parseLayout(root string, mountinfo, selfCgroup []byte) (*layout, error) {
	root = filepath.Clean(root)
	own, err := parseSelfCgroup(selfCgroup)
	if err != nil {
		return nil, err
	}
	l := &layout{}
	seen := map[string]bool{}
	// Lines of the bytes already read, not a bufio.Scanner: its 64 KiB
	// buffer cost a few dozen page faults on every container start.
	for line := range strings.Lines(string(mountinfo)) {
		h, fstype, ok := parseMountLine(strings.TrimSuffix(line, "\n"))
		if !ok || (h.mount != root && !strings.HasPrefix(h.mount, root+"/")) {
			continue
		}
		switch fstype {
		case "cgroup2":
			if l.unified != nil {
				continue // a bind mount of the same hierarchy
			}
			h.own = own[""]
			l.unified = &h
		case "cgroup":
			if len(h.controllers) == 0 || seen[h.key()] {
				continue
			}
			seen[h.key()] = true
			h.own = own[h.controllers[0]]
			l.v1 = append(l.v1, h)
		}
	}
	sort.Slice(l.v1, func(i, j int) bool { return l.v1[i].key() < l.v1[j].key() })
	switch {
	case l.unified != nil && l.unified.mount == root && len(l.v1) == 0:
		l.mode = ModeV2
	case len(l.v1) > 0 && l.unified != nil:
		l.mode = ModeHybrid
	case len(l.v1) > 0:
		l.mode = ModeV1
	default:
		return nil, fmt.Errorf("no cgroup hierarchy mounted under %s", root)
	}
	return l, nil
}

// parseMountLine reads one mountinfo line:
// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
func parseMountLine(line string) (hierarchy, string, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return hierarchy{}, "", false
	}
	f, g := strings.Fields(pre), strings.Fields(post)
	if len(f) < 5 || len(g) < 3 {
		return hierarchy{}, "", false
	}
	h := hierarchy{root: unescapeMount(f[3]), mount: unescapeMount(f[4])}
	if g[0] == "cgroup" {
		for _, o := range strings.Split(g[2], ",") {
			if v1Controllers[o] || strings.HasPrefix(o, "name=") {
				h.controllers = append(h.controllers, o)
			}
		}
	}
	return h, g[0], true
}

// unescapeMount undoes the octal escapes (\040 for space...) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseSelfCgroup maps each controller (and "" for cgroup2) to this
// process's cgroup path, from lines "ID:CONTROLLERS:PATH".
func parseSelfCgroup(data []byte) (map[string]string, error) {
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("parse /proc/self/cgroup line %q: want ID:CONTROLLERS:PATH", line)
		}
		if parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own, nil
}
