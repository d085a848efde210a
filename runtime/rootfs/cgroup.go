package rootfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/estiba/estiba/internal/openat"
	"github.com/estiba/estiba/runtime/cgroups"
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
	read := r.opts.Cgroups
	if read == nil {
		read = func() ([]byte, error) { return openat.ReadFile("/proc/self/cgroup") }
	}
	b, err := read()
	if err != nil {
		return fmt.Errorf("cgroup mount: %w", err)
	}
	hs, err := parseCgroupFile(b)
	if err != nil {
		return err
	}
	r.cgroups = hs
	if len(hs) == 1 && hs[0].controllers == "" {
		src, err := r.cgroupMount(hs[0], o.attrSet|o.recSet)
		if err != nil {
			return err
		}
		defer unix.Close(src)
		return r.attach(src, m.Destination, o)
	}
	return r.mountCgroupV1(m, o, hs)
}

func (r *Root) mountCgroupV1(m specs.Mount, o mountOptions, hs []hierarchy) error {
	// A read-only mount needs no tmpfs of its own: the runtime's shared
	// directory has the mount points (Options.Shared).
	sh := r.opts.Shared
	shared := sh != nil && o.attrSet&unix.MOUNT_ATTR_RDONLY != 0 && sh.hasMountPoints(hs)
	if r.cgroupNS() && !r.opts.CgroupHostPaths {
		// New mounts of every hierarchy: ask for all at once.
		var reqs []FSRequest
		if !shared {
			reqs = append(reqs, FSRequest{"tmpfs", cgroupTmpfs.fsConfig("tmpfs")})
		}
		for _, h := range hs {
			typ, fso := cgroupFS(h, 0)
			reqs = append(reqs, FSRequest{typ, fso.fsConfig("cgroup")})
		}
		if err := r.prefetch(reqs); err != nil {
			return fmt.Errorf("cgroup mount: %w", err)
		}
	}
	base := -1
	if shared {
		base, _ = sh.clone(sharedCgroup)
	}
	if base < 0 {
		var err error
		if base, err = r.newFS("tmpfs", "tmpfs", cgroupTmpfs); err != nil {
			return fmt.Errorf("cgroup mount: %w", err)
		}
	}
	defer unix.Close(base)
	if err := r.attach(base, m.Destination, o); err != nil {
		return err
	}
	for _, h := range hs {
		if err := r.mountHierarchy(base, h); err != nil {
			return fmt.Errorf("cgroup hierarchy %q: %w", h.dir(), err)
		}
	}
	// A tmpfs stays writable until the hierarchies' directories are made
	// in it; the attributes ("ro"...) are set last, on the whole tree in
	// one call rather than one per hierarchy.
	if attrs := o.attrSet | o.recSet; attrs != 0 {
		if err := unix.MountSetattr(base, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attrs}); err != nil {
			return fmt.Errorf("cgroup mount: set attributes: %w", err)
		}
	}
	return nil
}

// mountHierarchy mounts one hierarchy on its mount point in base (see
// makeMountPoint; the shared base has them all already).
func (r *Root) mountHierarchy(base int, h hierarchy) error {
	src, err := r.cgroupMount(h, 0)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	if _, err := makeMountPoint(base, h); err != nil {
		return err
	}
	dst, err := unix.Openat(base, h.dir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := unix.MoveMount(src, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	return nil
}

// makeMountPoint makes h's directory in dirfd, with symlinks from each
// co-mounted controller ("cpu" -> "cpu,cpuacct"), as on the host; what
// exists already is kept. It returns the names it stands for.
func makeMountPoint(dirfd int, h hierarchy) ([]string, error) {
	dir := h.dir()
	if err := unix.Mkdirat(dirfd, dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	names := []string{dir}
	if ctls := strings.Split(dir, ","); len(ctls) > 1 {
		for _, c := range ctls {
			if err := unix.Symlinkat(dir, dirfd, c); err != nil && !errors.Is(err, unix.EEXIST) {
				return nil, fmt.Errorf("symlink %s: %w", c, err)
			}
		}
		names = append(names, ctls...)
	}
	return names, nil
}

// cgroupMount returns a detached mount of the hierarchy rooted at the
// process's cgroup.
//
// Where /proc/self/cgroup (or Options.Cgroups) names host paths, a bind of
// the host's mount of the hierarchy is both what runc does without a cgroup
// namespace and far cheaper than a new cgroup mount (see
// Options.CgroupHostPaths): it is tried first, and checked to be a cgroup
// file system. That is the case without a cgroup namespace, and with a new
// one rooted at those cgroups (CgroupHostPaths). With a namespace that was
// joined, the paths are relative to it, so only a new mount (made in the
// namespace, rooted at it) gives the right view.
func (r *Root) cgroupMount(h hierarchy, attrs uint64) (int, error) {
	if r.cgroupNS() && !r.opts.CgroupHostPaths {
		return r.newCgroupMount(h, attrs)
	}
	fd, err := r.hostCgroupBind(h, attrs)
	if err == nil {
		return fd, nil
	}
	// No host mount where expected: a new mount (needs privilege over the
	// cgroup namespace) is the last resort. In a namespace rooted at the
	// process's cgroups, that cgroup is the new mount's root.
	nh := h
	if r.cgroupNS() {
		nh.path = "/"
	}
	fd2, err2 := r.newCgroupMount(nh, attrs)
	if err2 != nil {
		return -1, fmt.Errorf("%w; and a new mount: %w", err, err2)
	}
	return fd2, nil
}

// cgroupNS tells whether the container has (or joins) a cgroup namespace.
func (r *Root) cgroupNS() bool {
	if r.spec.Linux == nil {
		return false
	}
	for _, ns := range r.spec.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace {
			return true
		}
	}
	return false
}

// hostCgroupBind binds the host's directory of the process's cgroup in the
// hierarchy, from the conventional mount point of that hierarchy.
func (r *Root) hostCgroupBind(h hierarchy, attrs uint64) (int, error) {
	base := "/sys/fs/cgroup"
	if len(r.cgroups) != 1 || h.controllers != "" {
		base = filepath.Join(base, h.dir())
	}
	src := filepath.Join(base, h.path)
	// Checked before the clone: closing an unused clone unmounts it, which
	// waits for an expedited RCU grace period.
	dir, err := unix.Open(src, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("bind host cgroup %s: %w", src, err)
	}
	defer unix.Close(dir)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(dir, &sfs); err != nil || (sfs.Type != unix.CGROUP_SUPER_MAGIC && sfs.Type != unix.CGROUP2_SUPER_MAGIC) {
		return -1, fmt.Errorf("bind host cgroup %s: not a cgroup file system", src)
	}
	if err := r.holdsProcess(dir); err != nil {
		return -1, fmt.Errorf("bind host cgroup %s: %w", src, err)
	}
	fd, err := unix.OpenTree(dir, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, fmt.Errorf("bind host cgroup %s: %w", src, err)
	}
	if attrs != 0 {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: attrs}); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("bind host cgroup %s: set attributes: %w", src, err)
		}
	}
	return fd, nil
}

// holdsProcess checks that the cgroup at dir (a descriptor) has the
// process whose cgroups were read (Options.CgroupPID).
func (r *Root) holdsProcess(dir int) error {
	pid := r.opts.CgroupPID
	if pid == 0 {
		pid = unix.Getpid()
	}
	return cgroups.Holds(dir, pid)
}

// cgroupTmpfs holds the hierarchies of a cgroup v1 mount.
var cgroupTmpfs = mountOptions{data: []string{"mode=755"}}

// cgroupFS is the file system type and options of a new mount of h.
func cgroupFS(h hierarchy, attrs uint64) (string, mountOptions) {
	if h.controllers == "" {
		return "cgroup2", mountOptions{attrSet: attrs}
	}
	fso := mountOptions{attrSet: attrs, data: strings.Split(h.controllers, ",")}
	if strings.HasPrefix(h.controllers, "name=") && len(fso.data) == 1 {
		// A named hierarchy alone: without "none" cgroup v1 would bind
		// every controller to it.
		fso.data = append(fso.data, "none")
	}
	return "cgroup", fso
}

// newCgroupMount mounts a new instance of the hierarchy (in a cgroup
// namespace, rooted at the namespace) and clones the process's cgroup out of
// it when that is not the root.
func (r *Root) newCgroupMount(h hierarchy, attrs uint64) (int, error) {
	typ, fso := cgroupFS(h, attrs)
	full, err := r.newFS(typ, "cgroup", fso)
	if err != nil {
		return -1, err
	}
	rel := relPath(h.path)
	if rel == "." {
		return full, nil
	}
	defer unix.Close(full)
	sub, err := unix.OpenTree(full, rel, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("bind own cgroup %s out of a new mount (kernels before 6.15 cannot): %w", h.path, err)
	}
	return sub, nil
}
