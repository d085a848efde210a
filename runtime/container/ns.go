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
// inherits those of the thread that forked it.
type nsPlan struct {
	cloneflags  uintptr
	join        []nsJoin
	newTime     bool
	timeOffsets map[string]specs.LinuxTimeOffset
	// newCgroupNS is unshared by init itself, once the parent has moved it
	// into the container's cgroup: a cgroup namespace is rooted at the
	// cgroup its creator is in at that moment.
	newCgroupNS bool
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
			// setns(CLONE_NEWUSER) requires a single-threaded caller,
			// which a Go process never is.
			return nil, fmt.Errorf("joining an existing user namespace (%s) is not supported: %w", ns.Path, ErrUnsupported)
		case ns.Path != "" && ns.Type == specs.TimeNamespace:
			// setns into a time namespace also requires a single thread.
			return nil, fmt.Errorf("joining an existing time namespace (%s) is not supported: %w", ns.Path, ErrUnsupported)
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
	return p, nil
}

// start starts cmd, on a prepared thread if the plan needs one.
func (p *nsPlan) start(cmd *exec.Cmd) error {
	if len(p.join) == 0 && !p.newTime {
		return cmd.Start()
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
	var b strings.Builder
	for clock, off := range p.timeOffsets {
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	h, err := procfs.Open()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.WriteFile(fmt.Sprintf("%d/timens_offsets", unix.Gettid()), []byte(b.String())); err != nil {
		return fmt.Errorf("time offsets: %w", err)
	}
	return nil
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
