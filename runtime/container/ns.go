package container

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/runtime/procfs"
)

// nsPlan is how init gets its namespaces. New ones come from clone(2) flags
// (Go's SysProcAttr, no cgo). Existing ones (linux.namespaces[].path) and a
// new time namespace are entered on a dedicated, locked OS thread right
// before that thread forks init: namespaces are per thread, and a child
// inherits those of the thread that forked it. Joining an existing user or
// time namespace needs a single-threaded process: then init is started
// through the raw-fork trampoline instead (trampoline.go), which also
// creates the new namespaces, inside the (joined or new) user namespace.
type nsPlan struct {
	cloneflags  uintptr
	join        []nsJoin
	newTime     bool
	timeOffsets map[string]specs.LinuxTimeOffset
	// newCgroupNS is unshared by init itself, once the parent has moved it
	// into the container's cgroup: a cgroup namespace is rooted at the
	// cgroup its creator is in at that moment.
	newCgroupNS bool
	// uidMaps and gidMaps are the spec's, for a new user namespace.
	uidMaps, gidMaps []specs.LinuxIDMapping
}

type nsJoin struct {
	typ  specs.LinuxNamespaceType
	path string
	flag int
}

func planNamespaces(s *specs.Spec) (*nsPlan, error) {
	p := &nsPlan{}
	for _, ns := range s.Linux.Namespaces {
		flag := nsFlags[ns.Type]
		switch {
		case ns.Path != "" && ns.Type == specs.UserNamespace:
			same, err := sameNS(ns.Path, "/proc/self/ns/user")
			if err != nil {
				return nil, fmt.Errorf("user namespace %s: %w", ns.Path, err)
			}
			if same {
				// The kernel refuses to re-enter one's own user
				// namespace (it would regain capabilities); being in
				// it already is what the spec asks.
				continue
			}
			p.join = append(p.join, nsJoin{ns.Type, ns.Path, int(flag)})
		case ns.Path != "":
			p.join = append(p.join, nsJoin{ns.Type, ns.Path, int(flag)})
		case ns.Type == specs.CgroupNamespace:
			p.newCgroupNS = true
		case ns.Type == specs.TimeNamespace:
			p.newTime, p.timeOffsets = true, s.Linux.TimeOffsets
		default:
			p.cloneflags |= flag
		}
	}
	p.sortMountLast()
	// For the trampoline, which makes a new user namespace itself after
	// joining a time namespace.
	p.uidMaps, p.gidMaps = s.Linux.UIDMappings, s.Linux.GIDMappings
	return p, nil
}

// sameNS reports whether the namespace files a and b are the same namespace.
func sameNS(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// start starts cmd, on a prepared thread if the plan needs one.
func (p *nsPlan) start(cmd *exec.Cmd) error {
	if len(p.join) == 0 && !p.newTime {
		return cmd.Start()
	}
	if p.needsTrampoline() {
		return p.startTrampoline(cmd)
	}
	// Open every path first: after a mount namespace switch they would
	// resolve elsewhere.
	files := make([]*os.File, len(p.join))
	for i, j := range p.join {
		f, err := os.Open(j.path)
		if err != nil {
			closeAll(files)
			return fmt.Errorf("namespace %s: %w", j.typ, err)
		}
		files[i] = f
	}
	defer closeAll(files)
	return lockedThread(func() error {
		for i, j := range p.join {
			if j.typ == specs.MountNamespace {
				if err := unix.Unshare(unix.CLONE_FS); err != nil {
					return fmt.Errorf("unshare fs: %w", err)
				}
			}
			if err := unix.Setns(int(files[i].Fd()), j.flag); err != nil {
				return fmt.Errorf("join %s namespace %s: %w", j.typ, j.path, err)
			}
		}
		if p.newTime {
			if err := p.unshareTime(); err != nil {
				return err
			}
		}
		return cmd.Start()
	})
}

// unshareTime makes this thread's children start in a new time namespace
// with the spec's offsets, which the kernel accepts only before any process
// has entered it: hence unshare (which moves only future children) and the
// write, then the fork.
func (p *nsPlan) unshareTime() error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	if len(p.timeOffsets) == 0 {
		return nil
	}
	h, err := procfs.Open()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.WriteFile(fmt.Sprintf("%d/timens_offsets", unix.Gettid()), []byte(formatOffsets(p.timeOffsets))); err != nil {
		return fmt.Errorf("time offsets: %w", err)
	}
	return nil
}

// formatOffsets is offs as /proc/<pid>/timens_offsets takes them.
func formatOffsets(offs map[string]specs.LinuxTimeOffset) string {
	var b strings.Builder
	for clock, off := range offs {
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	return b.String()
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// sortMountLast moves a mount namespace to the end of the joins. setns into
// a mount namespace fails for a thread sharing its fs_struct (root, cwd)
// with others, as every Go thread does, so the thread first unshares
// CLONE_FS; doing it last keeps that step out of the others' way.
func (p *nsPlan) sortMountLast() {
	for i, j := range p.join {
		if j.typ == specs.MountNamespace && i != len(p.join)-1 {
			p.join[i], p.join[len(p.join)-1] = p.join[len(p.join)-1], p.join[i]
			return
		}
	}
}
