// Package rootfs builds a container's root filesystem inside its new mount
// namespace: the rootfs bind mount, the spec's mounts, /dev, pivot_root, and
// the masked and read-only paths. Every mount target is resolved inside the
// rootfs without following symlinks out of it, because the rootfs belongs to
// the (hostile) container image.
//
// The container's init calls, in its new mount namespace (and user
// namespace, if any):
//
//	root, err := rootfs.Setup(spec, bundle, rootfs.Options{InUserNS: ...})
//	// createContainer hooks run here, on the prepared tree
//	err = root.Pivot()              // cwd is now the container's "/"
//	err = root.MountConsole(pty)    // if process.terminal
//
// Or the runtime calls them itself, on a thread that joined init's mount
// (net, ipc, uts, cgroup) namespaces with nsthread.Run, as root of the
// initial user namespace. What Setup would take from the calling process is
// then given: Options.FS makes the file systems in init (a new superblock
// belongs to its creator's namespaces and credentials), Options.Cgroups
// and Options.UserNSFile stand for /proc/self/cgroup and /proc/self/ns/user.
// Init follows the thread's pivot_root if its root and cwd are the
// namespace's "/" (see Pivot and CheckFollowed).
//
// Guarantees: targets are opened with openat2(RESOLVE_IN_ROOT) and mounted
// onto by descriptor (move_mount), so a symlink or a racing rename of the
// image never places a mount outside the rootfs (CVE-2021-30465); proc and
// sysfs destinations must not go through symlinks; nothing may be mounted
// over a procfs file but an allowlist (lxcfs-style); masks use a /dev/null
// checked to be char device 1:3 and never a symlink (CVE-2025-31133);
// /dev/console must be a plain file and the pty a devpts node
// (CVE-2025-52565); after Pivot no host mount remains in the namespace.
//
// It needs Linux 5.12 or newer (openat2, the new mount API, mount_setattr);
// a cgroup v1 hierarchy mounted anew inside a cgroup namespace for a process
// not at the namespace's root needs 6.15 (cloning from a detached mount).
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// UserNSMaker gives a user namespace with the given mappings, for idmapped
// mounts that carry their own uidMappings/gidMappings. Creating one needs a
// process, and Setup forks nothing by itself: the runtime makes them (with
// NewUserNS, in its own process) and hands them over, e.g. as a UserNSFunc.
type UserNSMaker interface {
	UserNS(uidMappings, gidMappings []specs.LinuxIDMapping) (*os.File, error)
}

// Options are the runtime's choices that the spec does not carry.
type Options struct {
	// NoPivot uses MS_MOVE + chroot instead of pivot_root (runc --no-pivot),
	// for roots that pivot_root refuses (an initramfs).
	NoPivot bool
	// InUserNS is set when the container has its own user namespace: device
	// nodes are then bind-mounted from the host instead of created.
	InUserNS bool
	// UserNS, if set, makes user namespaces for idmapped mounts with
	// explicit mappings; without it such mounts fail with a clear error.
	UserNS UserNSMaker
	// MountSources are detached mounts made by the runtime outside the
	// container's user namespace (PrepareMount), by index in spec.Mounts:
	// how a container with a user namespace gets idmapped mounts. Setup
	// uses them in place of the source and leaves them open.
	MountSources map[int]*os.File `json:"-"`
	// Shared, if set, gives masked directories and a read-only cgroup v1
	// /sys/fs/cgroup their base, in place of a tmpfs each (see
	// SharedDirs): a long-lived runtime's, kept across containers.
	Shared *SharedDirs `json:"-"`

	// The fields below are for a Setup that does not run in the
	// container's init but in a runtime thread that joined its mount
	// namespace (see package nsthread): what Setup would otherwise take
	// from the calling process ("self") comes from init.

	// FS, if set, creates new file system instances (what newFS does
	// with fsopen/fsconfig/fsmount): the container's init, whose
	// namespaces and credentials they must carry.
	FS FSMaker `json:"-"`
	// Cgroups, if set, is called instead of reading /proc/self/cgroup
	// when the spec's cgroup mount is made: init's /proc/<pid>/cgroup,
	// read from inside its cgroup namespace (the paths are relative to
	// the reader's). A func: the runtime may still be placing init in
	// its cgroup while the mounts before that one are made.
	Cgroups func() ([]byte, error) `json:"-"`
	// CgroupHostPaths says that Cgroups reads init's cgroups from the
	// host's cgroup namespace, and that a cgroup namespace of the
	// container, if it has one, was made by init while in those cgroups
	// (so they are its root). A bind of the host's directory of each is
	// then the same view as a new mount in the namespace, and far
	// cheaper: a new cgroup mount is a new superblock, whose lookup
	// compares every cgroup superblock on the host, and on cgroup v1 it
	// first walks every cgroup of the v2 hierarchy under the global cgroup
	// mutex: with a cgroup namespace per container, both grow with the
	// number of containers.
	CgroupHostPaths bool
	// CgroupPID is the process whose cgroups Cgroups reads, as the
	// caller's pid namespace numbers it; 0 means the caller. A bind of
	// the host's directory of a hierarchy is used only if that process
	// is in it (its cgroup.procs), so that paths read in one cgroup
	// namespace and a /sys/fs/cgroup mounted for another never make the
	// container see a cgroup that is not its own.
	CgroupPID int
	// ProcReady, if set, is called with the detached mount of each new
	// proc file system of the spec's mounts, before it is attached and
	// before any path of the container can reach it: the caller writes
	// the container's sysctls through it (its /proc/sys shows the
	// network namespace of the calling thread).
	ProcReady func(proc int) error `json:"-"`
	// UserNSFile, if set, is the container's user namespace, used
	// instead of /proc/self/ns/user by idmapped mounts without mappings
	// of their own. Setup does not close it.
	UserNSFile *os.File `json:"-"`
}

// Root is a root filesystem prepared by Setup, not yet pivoted into.
type Root struct {
	spec   *specs.Spec
	path   string // absolute path of the rootfs (the bind-mounted copy)
	bundle string
	opts   Options
	fd     int // O_PATH descriptor of the rootfs bind mount; "/" after Pivot
	// cgroups are the lines of /proc/self/cgroup (or Options.Cgroups),
	// read for a cgroup mount.
	cgroups []hierarchy
	// pool holds the prefetched file system instances by request (see
	// prefetch); Pivot's masks take the last, and Close drops the rest.
	pool map[string][]int
}

// Setup must run in the container's new mount namespace: in its init, or
// in a runtime thread that joined it (see the package comment). It makes the old root's propagation private (or as
// linux.rootfsPropagation says), bind-mounts root.path onto itself, performs
// spec.Mounts in order, and populates /dev. It stops before pivot_root so the
// createContainer hooks can run on the prepared tree.
func Setup(spec *specs.Spec, bundle string, opts Options) (*Root, error) {
	if spec == nil || spec.Root == nil || spec.Root.Path == "" {
		return nil, errors.New("rootfs: spec has no root.path")
	}
	path := spec.Root.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(bundle, path)
	}
	r := &Root{spec: spec, path: filepath.Clean(path), bundle: bundle, opts: opts, fd: -1}
	if err := r.setup(); err != nil {
		r.Close()
		return nil, fmt.Errorf("rootfs %s: %w", r.path, err)
	}
	return r, nil
}

func (r *Root) setup() error {
	if err := r.prepareRoot(); err != nil {
		return err
	}
	if err := r.prefetch(r.plannedFS()); err != nil {
		return err
	}
	devMount := -1
	for i, m := range r.spec.Mounts {
		if relPath(m.Destination) == "dev" {
			devMount = i
		}
	}
	if devMount < 0 {
		// /dev first: the spec's /dev/pts, /dev/shm... go on top of it.
		if err := r.mountSpec(devTmpfs, -1); err != nil {
			return fmt.Errorf("mount /dev: %w", err)
		}
	}
	for i, m := range r.spec.Mounts {
		if err := r.mountSpec(m, i); err != nil {
			return fmt.Errorf("mount %s (%s): %w", m.Destination, m.Type, err)
		}
	}
	devBind := false
	if devMount >= 0 {
		o, _ := parseOptions(r.spec.Mounts[devMount].Type, r.spec.Mounts[devMount].Options)
		devBind = o.bind
	}
	return r.setupDev(devBind)
}

// prepareRoot isolates our mount namespace from the host's and makes the
// rootfs a mount point of its own.
func (r *Root) prepareRoot() error {
	// The new namespace is a copy of the host's, with the host's (often
	// shared) propagation: before any mount of ours, "/" must stop sending
	// events to the host, or every mount below would appear there too.
	prop, rec := uint64(unix.MS_SLAVE), true
	if p, ok, err := r.rootPropagation(); err != nil {
		return err
	} else if ok {
		prop, rec = p.propagation, p.recPropagation
	}
	flags := uintptr(prop)
	if rec {
		flags |= unix.MS_REC
	}
	if err := unix.Mount("", "/", "", flags, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	if !rec || (prop != unix.MS_SLAVE && prop != unix.MS_PRIVATE) {
		// "/" alone, or made shared or unbindable: the mount holding the
		// rootfs may still be shared with the host (our mounts would
		// appear there), and pivot_root refuses a new root whose parent
		// is shared. It is only the host's old tree, detached after the
		// pivot, so making it private here costs nothing.
		if err := makeParentPrivate(r.path); err != nil {
			return err
		}
	}
	if prop == unix.MS_SHARED {
		// pivot_root also refuses a current root that is shared.
		if err := unix.Mount("", "/", "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make old root private: %w", err)
		}
	}
	// pivot_root needs the new root to be a mount point; the recursive
	// bind also gives one mount that holds everything mounted below.
	if err := unix.Mount(r.path, r.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs onto itself: %w", err)
	}
	// Opened after the bind so the descriptor is on the bind mount: what
	// is mounted relative to it is inside what pivot_root takes.
	fd, err := unix.Open(r.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	r.fd = fd
	return nil
}

// rootPropagation parses linux.rootfsPropagation.
func (r *Root) rootPropagation() (mountOptions, bool, error) {
	if r.spec.Linux == nil || r.spec.Linux.RootfsPropagation == "" {
		return mountOptions{}, false, nil
	}
	p := r.spec.Linux.RootfsPropagation
	o, err := parseOptions("", []string{p})
	if err != nil || o.propagation == 0 || o.attrSet|o.attrClr|o.recSet|o.recClr != 0 || len(o.data) > 0 {
		return o, false, fmt.Errorf("linux.rootfsPropagation %q: not a propagation type", p)
	}
	return o, true, nil
}

// Close releases the descriptors Root holds. Pivot leaves them open for
// MountConsole; exec closes them anyway (O_CLOEXEC).
func (r *Root) Close() error {
	if r == nil || r.fd < 0 {
		return nil
	}
	r.closePool()
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// Pivot switches the calling process's root to r (pivot_root, or chroot with
// NoPivot), detaches the old root, then applies maskedPaths, readonlyPaths
// and root.readonly. After Pivot the process's cwd is "/" of the container.
//
// Called from a runtime thread that joined the container's mount namespace
// (nsthread), Pivot changes the thread's root and cwd, and the container's
// init follows: pivot_root(2) moves the root and the cwd of every process
// whose root, or cwd, is the old root, so an init whose root and cwd are the
// namespace's "/" ends up in the container's "/" as well. A root or cwd
// anywhere else (an init chrooted, or left in the bundle directory) stays in
// the detached host tree, open to the container: the runtime checks with
// CheckFollowed. NoPivot does not work that way: chroot(2) is the caller's
// alone, so init keeps the old root.
func (r *Root) Pivot() error {
	if r == nil || r.fd < 0 {
		return errors.New("rootfs: Pivot on a Root that Setup did not return")
	}
	var err error
	if r.opts.NoPivot {
		err = r.moveRoot()
	} else {
		err = r.pivotRoot()
	}
	if err != nil {
		return err
	}
	if err := r.finish(); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

// CheckFollowed checks that process pid's root and cwd are the container's
// "/" after Pivot (same mount, same inode), i.e. that pid followed a Pivot
// made by another process or thread. It reads /proc/<pid>, so it must run
// in a thread whose /proc shows pid: the runtime's own threads, not the
// thread that pivoted (whose /proc is now the container's).
func (r *Root) CheckFollowed(pid int) error {
	if r == nil || r.fd < 0 {
		return errors.New("rootfs: CheckFollowed on a closed Root")
	}
	want, err := statxID(r.fd, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("rootfs: statx container root: %w", err)
	}
	for _, l := range []string{"root", "cwd"} {
		p := "/proc/" + strconv.Itoa(pid) + "/" + l
		got, err := statxID(unix.AT_FDCWD, p, 0)
		if err != nil {
			return fmt.Errorf("rootfs: process %d: %w", pid, err)
		}
		if got != want {
			return fmt.Errorf("rootfs: process %d's %s is not the container's root after pivot_root (mount %d inode %d, want mount %d inode %d): it was not the mount namespace's \"/\" (a chroot?) and stays in the host's tree",
				pid, l, got.mnt, got.ino, want.mnt, want.ino)
		}
	}
	return nil
}

// fileID names an inode of a mount: a bind of a directory onto itself has
// the same dev and inode as the directory, only the mount tells them apart.
type fileID struct {
	mnt, ino           uint64
	devMajor, devMinor uint32
}

func statxID(dirfd int, path string, flags int) (fileID, error) {
	var st unix.Statx_t
	if err := unix.Statx(dirfd, path, flags, unix.STATX_INO|unix.STATX_MNT_ID, &st); err != nil {
		return fileID{}, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return fileID{}, fmt.Errorf("statx %s: no mount id (Linux 5.8 or newer needed)", path)
	}
	return fileID{mnt: st.Mnt_id, ino: st.Ino, devMajor: st.Dev_major, devMinor: st.Dev_minor}, nil
}

// pivotRoot uses pivot_root(".", "."): the old root ends up stacked on the
// new one at "/", and one lazy unmount of "." removes it, with no directory
// needed inside the image to hold it.
func (r *Root) pivotRoot() error {
	oldRoot, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	if err := unix.Fchdir(r.fd); err != nil {
		return fmt.Errorf("rootfs: chdir to rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("rootfs: pivot_root: %w", err)
	}
	// Unmounting a tree whose mounts are shared unmounts their peers'
	// copies too, on the host: make the whole old tree a slave first. By
	// descriptor, since "." would name the new root for mount(2).
	if err := unix.MountSetattr(oldRoot, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Propagation: unix.MS_SLAVE}); err != nil {
		return fmt.Errorf("rootfs: make old root a slave: %w", err)
	}
	// umount2 looks "." up as a mount point, so it takes the top of the
	// stack: the old root.
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("rootfs: detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("rootfs: chdir /: %w", err)
	}
	return nil
}

// moveRoot is --no-pivot: the rootfs mount is moved over "/" and chrooted
// into. The host's old root cannot be unmounted from under the rootfs, but
// every other host mount is detached first, so the namespace holds no
// reference to them.
func (r *Root) moveRoot() error {
	if err := detachOutside(r.path); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := unix.Fchdir(r.fd); err != nil {
		return fmt.Errorf("rootfs: chdir to rootfs: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("rootfs: move rootfs to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("rootfs: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("rootfs: chdir /: %w", err)
	}
	return nil
}

// finish applies, in the container's root, what must come after the pivot:
// readonly paths, then masked paths (a mask inside a read-only tree still
// mounts), root.readonly, and last the root propagation: applied to "/"
// before the pivot it would reach the host's root, and an unbindable root
// would forbid the binds of the paths.
func (r *Root) finish() error {
	if l := r.spec.Linux; l != nil {
		for _, p := range l.ReadonlyPaths {
			if err := r.readonlyPath(p); err != nil {
				return err
			}
		}
		if err := r.maskPaths(l.MaskedPaths); err != nil {
			return err
		}
	}
	if r.spec.Root.Readonly {
		if err := unix.MountSetattr(r.fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fmt.Errorf("make / read-only: %w", err)
		}
	}
	if p, ok, err := r.rootPropagation(); err != nil {
		return err
	} else if ok {
		flags := uint(unix.AT_EMPTY_PATH)
		if p.recPropagation {
			flags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(r.fd, "", flags, &unix.MountAttr{Propagation: p.propagation}); err != nil {
			return fmt.Errorf("set rootfs propagation: %w", err)
		}
	}
	return nil
}

// detachOutside lazily unmounts every mount that neither holds root nor is
// below it, deepest first, each made a slave first so that the unmount does
// not propagate to the host.
func detachOutside(root string) error {
	points, err := mountPoints()
	if err != nil {
		return err
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if p == root || strings.HasPrefix(p, root+"/") || p == "/" || strings.HasPrefix(root, p+"/") {
			continue
		}
		if err := unix.Mount("", p, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				continue // gone with a mount detached before, or hidden
			}
			return fmt.Errorf("make %s a slave: %w", p, err)
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("detach host mount %s: %w", p, err)
		}
	}
	return nil
}

// mountPoints lists the mount points of the calling thread's mount
// namespace (thread-self: a thread may have unshared its own).
func mountPoints() ([]string, error) {
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out = append(out, unescapeMountinfo(f[4]))
		}
	}
	return out, nil
}

// makeParentPrivate makes the mount holding path private. Only needed when
// "/" was made shared: it is found in mountinfo, the longest mount point
// that is a prefix of path.
func makeParentPrivate(path string) error {
	points, err := mountPoints()
	if err != nil {
		return fmt.Errorf("find rootfs parent mount: %w", err)
	}
	best := "/"
	for _, mp := range points {
		if len(mp) > len(best) && (path == mp || strings.HasPrefix(path, mp+"/")) {
			best = mp
		}
	}
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make rootfs parent mount %s private: %w", best, err)
	}
	return nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space...) of
// mountinfo fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
