package rootfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hierarchy is one line of /proc/self/cgroup: the controllers of a v1
// hierarchy ("cpu,cpuacct", "name=systemd") or "" for the v2 one, and the
// process's cgroup in it, relative to its cgroup namespace.
type hierarchy struct {
	controllers string
	path        string
}

func parseCgroupFile(b []byte) ([]hierarchy, error) {
	var hs []hierarchy
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("malformed /proc/self/cgroup line %q", sc.Text())
		}
		hs = append(hs, hierarchy{controllers: parts[1], path: parts[2]})
	}
	return hs, sc.Err()
}

// dir is the hierarchy's directory name below /sys/fs/cgroup.
func (h hierarchy) dir() string {
	if h.controllers == "" {
		return "unified"
	}
	return strings.TrimPrefix(h.controllers, "name=")
}

// mountCgroup mounts the container's view of the cgroup hierarchies at the
// spec's destination: on a v2-only host the cgroup2 file system; otherwise a
// tmpfs holding one directory per hierarchy (v2 as "unified"), as on the
// host. Each hierarchy is rooted at the container's own cgroup, so with or
// without a cgroup namespace the container never sees its parents.
func (r *Root) mountCgroup(m specs.Mount, o mountOptions) error {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return fmt.Errorf("cgroup mount: %w", err)
	}
	hs, err := parseCgroupFile(b)
	if err != nil {
		return err
	}
	if len(hs) == 1 && hs[0].controllers == "" {
		src, err := r.cgroupMount(hs[0], o)
		if err != nil {
			return err
		}
		defer unix.Close(src)
		return r.attach(src, m.Destination, o)
	}
	return r.mountCgroupV1(m, o, hs)
}

func (r *Root) mountCgroupV1(m specs.Mount, o mountOptions, hs []hierarchy) error {
	// The tmpfs stays writable until the hierarchies' directories are made
	// in it; "ro" is applied to it last.
	tmpfs, err := newFS("tmpfs", "tmpfs", mountOptions{attrSet: (o.attrSet | o.recSet) &^ unix.MOUNT_ATTR_RDONLY, data: []string{"mode=755"}})
	if err != nil {
		return fmt.Errorf("cgroup mount: %w", err)
	}
	defer unix.Close(tmpfs)
	if err := r.attach(tmpfs, m.Destination, o); err != nil {
		return err
	}
	for _, h := range hs {
		if err := r.mountHierarchy(tmpfs, h, o); err != nil {
			return fmt.Errorf("cgroup hierarchy %q: %w", h.dir(), err)
		}
	}
	if (o.attrSet|o.recSet)&unix.MOUNT_ATTR_RDONLY != 0 {
		if err := unix.MountSetattr(tmpfs, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fmt.Errorf("cgroup mount: make read-only: %w", err)
		}
	}
	return nil
}

// mountHierarchy mounts one hierarchy in a directory of the tmpfs, with
// symlinks from each co-mounted controller ("cpu" -> "cpu,cpuacct").
func (r *Root) mountHierarchy(tmpfs int, h hierarchy, o mountOptions) error {
	src, err := r.cgroupMount(h, o)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	dir := h.dir()
	if err := unix.Mkdirat(tmpfs, dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	dst, err := unix.Openat(tmpfs, dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := unix.MoveMount(src, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	if ctls := strings.Split(dir, ","); len(ctls) > 1 {
		for _, c := range ctls {
			if err := unix.Symlinkat(dir, tmpfs, c); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("symlink %s: %w", c, err)
			}
		}
	}
	return nil
}

// cgroupMount returns a detached mount of the hierarchy rooted at the
// process's cgroup: a new cgroup file system instance when allowed (a cgroup
// namespace owned by our user namespace, or real root), else — in a user
// namespace without its own cgroup namespace — a bind of the host's
// directory, as runc does.
func (r *Root) cgroupMount(h hierarchy, o mountOptions) (int, error) {
	attrs := o.attrSet | o.recSet
	typ := "cgroup"
	fso := mountOptions{attrSet: attrs}
	if h.controllers == "" {
		typ = "cgroup2"
	} else {
		for _, c := range strings.Split(h.controllers, ",") {
			fso.data = append(fso.data, c)
		}
		if strings.HasPrefix(h.controllers, "name=") && !strings.Contains(h.controllers, ",") {
			// A named hierarchy alone: without "none" cgroup v1 would
			// bind every controller to it.
			fso.data = append(fso.data, "none")
		}
	}
	hostBind := func() (int, error) {
		return r.detachedBind(specs.Mount{Source: filepath.Join("/sys/fs/cgroup", h.dir(), h.path)},
			mountOptions{bind: true, attrSet: attrs})
	}
	full, err := newFS(typ, "cgroup", fso)
	if errors.Is(err, unix.EPERM) {
		return hostBind()
	}
	if err != nil {
		return -1, err
	}
	rel := relPath(h.path)
	if rel == "." {
		return full, nil
	}
	defer unix.Close(full)
	sub, err := unix.OpenTree(full, rel, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if errors.Is(err, unix.EINVAL) {
		// Kernels before 6.15 cannot clone from a detached mount.
		return hostBind()
	}
	if err != nil {
		return -1, fmt.Errorf("bind own cgroup %s: %w", h.path, err)
	}
	return sub, nil
}
