package rootfs

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/estiba/estiba/internal/openat"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Every mount is built detached (fsopen+fsmount for a new file system,
// open_tree for a bind), given its attributes while no one can see it, and
// only then attached onto the descriptor of its resolved target with
// move_mount. So a mount never appears with weaker flags than asked, and the
// target is the inode openat2 resolved inside the rootfs, not a path looked up
// again.

// procMountAllowed lists the only places inside /proc a spec may mount over
// (lxcfs-style files and the checkpoint helper), as runc allows: a mount over
// any other procfs file could hide what masking and read-only paths protect.
var procMountAllowed = map[string]bool{
	"/proc/cpuinfo": true, "/proc/diskstats": true, "/proc/meminfo": true,
	"/proc/stat": true, "/proc/swaps": true, "/proc/uptime": true,
	"/proc/loadavg": true, "/proc/slabinfo": true, "/proc/pressure": true,
	"/proc/sys/kernel/ns_last_pid": true,
}

// mountSpec performs one spec mount, spec.Mounts[idx] (-1 for our own).
func (r *Root) mountSpec(m specs.Mount, idx int) error {
	if relPath(m.Destination) == "." {
		return errors.New("destination is the root itself (use root.path)")
	}
	o, err := parseOptions(m.Type, m.Options)
	if err != nil {
		return err
	}
	if !o.bind && m.Type == "cgroup" {
		return r.mountCgroup(m, o)
	}
	var src int
	if f := r.opts.MountSources[idx]; f != nil && idx >= 0 {
		src, err = r.preparedBind(f, m, o)
	} else if o.bind {
		src, err = r.detachedBind(m, o)
	} else {
		src, err = r.newFS(m.Type, m.Source, o)
		if m.Type == "proc" && err == nil && r.opts.ProcReady != nil {
			if err = r.opts.ProcReady(src); err != nil {
				unix.Close(src)
				return err
			}
		}
		if m.Type == "sysfs" && errors.Is(err, unix.EPERM) {
			// In a user namespace that does not own the network
			// namespace, sysfs cannot be mounted; runc binds the
			// host's /sys instead, and so do we.
			src, err = r.detachedBind(specs.Mount{Source: "/sys"}, mountOptions{bind: true, recursive: true, recSet: o.attrSet | o.recSet})
		}
	}
	if err != nil {
		return err
	}
	defer unix.Close(src)
	if o.copyUp {
		if err := r.copyUp(src, m.Destination); err != nil {
			return err
		}
	}
	// A symlink of the image in a procfs or sysfs destination is refused,
	// not followed (runc's CVE-2019-16884 rule): tools and LSMs trust /proc
	// and /sys to be where they are.
	o.noSymlinks = m.Type == "proc" || m.Type == "sysfs"
	return r.attach(src, m.Destination, o)
}

// attach moves the detached mount src onto dest inside the rootfs and sets
// its propagation, which only an attached mount has.
func (r *Root) attach(src int, dest string, o mountOptions) error {
	dst, err := r.target(src, dest, o.noSymlinks)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := unix.MoveMount(src, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &pathError{"mount onto", dest, err}
	}
	if o.propagation != 0 {
		flags := uint(unix.AT_EMPTY_PATH)
		if o.recPropagation {
			flags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(src, "", flags, &unix.MountAttr{Propagation: o.propagation}); err != nil {
			return &pathError{"set propagation of", dest, err}
		}
	}
	return nil
}

// target opens dest inside the rootfs as a mount point, creating it as a
// directory or an empty file after the source's type when missing, and
// refuses a target inside procfs that is not explicitly allowed.
func (r *Root) target(src int, dest string, noSymlinks bool) (int, error) {
	open := func() (int, error) {
		if !noSymlinks {
			return openInRoot(r.fd, dest, unix.O_PATH)
		}
		fd, err := openat.Openat2(r.fd, relPath(dest), &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.ELOOP) {
			return -1, fmt.Errorf("destination %s goes through a symlink", dest)
		}
		if err != nil {
			return -1, &pathError{"open", dest, err}
		}
		return fd, nil
	}
	dst, err := open()
	if errors.Is(err, unix.ENOENT) {
		var st unix.Stat_t
		if err := unix.Fstat(src, &st); err != nil {
			return -1, fmt.Errorf("stat mount source for %s: %w", dest, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			dst, err = mkdirAllInRoot(r.fd, dest)
		} else {
			dst, err = createFileInRoot(r.fd, dest)
		}
		if err == nil && noSymlinks {
			// Created; now opened as the rule says.
			unix.Close(dst)
			dst, err = open()
		}
	}
	if err != nil {
		return -1, err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(dst, &sfs); err != nil {
		unix.Close(dst)
		return -1, &pathError{"statfs", dest, err}
	}
	if sfs.Type == unix.PROC_SUPER_MAGIC && !procMountAllowed[filepath.Clean("/"+dest)] {
		unix.Close(dst)
		return -1, fmt.Errorf("mount onto %s: the target resolves inside procfs, where only %v may be mounted over", dest, keys(procMountAllowed))
	}
	return dst, nil
}

// detachedBind clones the bind source (relative to the bundle when not
// absolute) as a detached mount and applies the attributes and the idmap.
func (r *Root) detachedBind(m specs.Mount, o mountOptions) (int, error) {
	source := m.Source
	if !filepath.IsAbs(source) {
		source = filepath.Join(r.bundle, source)
	}
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if o.recursive {
		flags |= unix.AT_RECURSIVE
	}
	dirfd, name := unix.AT_FDCWD, source
	if rel, err := filepath.Rel(r.path, filepath.Clean(source)); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && r.fd >= 0 {
		// A source inside the rootfs belongs to the image: resolve it
		// there, or a symlink of the image would bind a host file.
		in, err := openInRoot(r.fd, rel, unix.O_PATH)
		if err != nil {
			return -1, fmt.Errorf("bind source: %w", err)
		}
		defer unix.Close(in)
		dirfd, name = in, ""
		flags |= unix.AT_EMPTY_PATH
	}
	fd, err := unix.OpenTree(dirfd, name, flags)
	if errors.Is(err, unix.EINVAL) && r.opts.InUserNS && !o.recursive {
		err = fmt.Errorf("%w (in a user namespace, a bind without its submounts would uncover what they hide: use rbind)", err)
	}
	if err != nil {
		return -1, fmt.Errorf("bind %s: %w", source, err)
	}
	if err := r.setBindAttrs(fd, m, o, false); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) && r.opts.InUserNS && o.attrClr|o.recClr != 0 {
			err = fmt.Errorf("%w (in a user namespace, ro, nosuid, nodev, noexec and atime flags of a host mount are locked and cannot be cleared)", err)
		}
		return -1, fmt.Errorf("bind %s on %s: %w", source, m.Destination, err)
	}
	return fd, nil
}

// setBindAttrs applies the recursive attributes first, then the top mount's,
// so that "rro,rw" leaves only submounts read-only. Only the attributes asked
// for are touched: the flags a user namespace locks on mounts inherited from
// the host (ro, nosuid, nodev, noexec, atime) are never cleared unasked, and
// clearing one asked for fails with EPERM instead of silently not applying.
func (r *Root) setBindAttrs(fd int, m specs.Mount, o mountOptions, prepared bool) error {
	if o.recSet|o.recClr != 0 {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: o.recSet, Attr_clr: o.recClr}); err != nil {
			return fmt.Errorf("set recursive attributes: %w", err)
		}
	}
	if o.attrSet|o.attrClr != 0 {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: o.attrSet, Attr_clr: o.attrClr}); err != nil {
			return fmt.Errorf("set attributes: %w", err)
		}
	}
	if !prepared && (o.idmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0) {
		return r.idmap(fd, m, o)
	}
	return nil
}

// preparedBind uses the detached mount the runtime made for this spec mount
// (PrepareMount), applying the attributes; the caller keeps its descriptor.
func (r *Root) preparedBind(f *os.File, m specs.Mount, o mountOptions) (int, error) {
	if !o.bind {
		return -1, fmt.Errorf("a prepared source is only for bind mounts")
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("prepared source: %w", err)
	}
	if err := r.setBindAttrs(fd, m, o, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("prepared source of %s: %w", m.Destination, err)
	}
	return fd, nil
}

// PrepareMount makes, outside the container's user namespace, the detached
// bind mount for a spec mount that the container's init cannot make itself:
// an idmapped mount of a host file system needs privilege over the file
// system's user namespace. userns gives the mapping (NewUserNS for the
// mount's own mappings, or the container's user namespace); the result goes
// to Setup in Options.MountSources, under the mount's index.
func PrepareMount(m specs.Mount, bundle string, userns *os.File) (*os.File, error) {
	o, err := parseOptions(m.Type, m.Options)
	if err != nil {
		return nil, err
	}
	if !o.bind {
		return nil, fmt.Errorf("prepare mount %s: only bind mounts", m.Destination)
	}
	source := m.Source
	if !filepath.IsAbs(source) {
		source = filepath.Join(bundle, source)
	}
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if o.recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, source, flags)
	if err != nil {
		return nil, fmt.Errorf("prepare mount %s: bind %s: %w", m.Destination, source, err)
	}
	if o.idmap {
		if userns == nil {
			unix.Close(fd)
			return nil, fmt.Errorf("prepare mount %s: idmap needs a user namespace", m.Destination)
		}
		aflags := uint(unix.AT_EMPTY_PATH)
		if o.recIdmap {
			aflags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(fd, "", aflags, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("prepare mount %s: idmap: %w", m.Destination, err)
		}
	}
	return os.NewFile(uintptr(fd), "mount:"+m.Destination), nil
}

// idmap makes the detached mount fd idmapped. The user namespace giving the
// mapping comes from Options.UserNS for explicit mappings, else it is the
// container's own: Options.UserNSFile, or the caller's.
func (r *Root) idmap(fd int, m specs.Mount, o mountOptions) error {
	if !o.idmap {
		return errors.New("uidMappings/gidMappings need the idmap or ridmap option")
	}
	var ns *os.File
	var err error
	switch {
	case len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0:
		if r.opts.UserNS == nil {
			return errors.New("idmapped mount with its own mappings: the runtime gave no way to create a user namespace (Options.UserNS)")
		}
		ns, err = r.opts.UserNS.UserNS(m.UIDMappings, m.GIDMappings)
		if err == nil {
			defer ns.Close()
		}
	case r.opts.UserNSFile != nil:
		ns = r.opts.UserNSFile // the caller closes it
	case r.opts.InUserNS:
		ns, err = os.Open("/proc/self/ns/user")
		if err == nil {
			defer ns.Close()
		}
	default:
		return errors.New("idmap without uidMappings/gidMappings needs a container user namespace")
	}
	if err != nil {
		return fmt.Errorf("user namespace for idmap: %w", err)
	}
	flags := uint(unix.AT_EMPTY_PATH)
	if o.recIdmap {
		flags |= unix.AT_RECURSIVE
	}
	if err := unix.MountSetattr(fd, "", flags, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}); err != nil {
		return fmt.Errorf("idmap (the kernel refuses idmapped mounts of this file system, or from a user namespace not owning it): %w", err)
	}
	return nil
}

func keys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}
