package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrIDMapUnsupported reports that the kernel or the file system holding
// the layers cannot give an overlay idmapped lower layers (idmapped mounts
// need 5.12 and a file system that allows them; overlayfs takes idmapped
// layers from 5.19).
var ErrIDMapUnsupported = errors.New("idmapped overlay layers are not supported by this kernel or file system")

// IDMap is how a container with a user namespace sees its rootfs.
type IDMap struct {
	// UserNS is a user namespace holding the container's mapping: the
	// lower layers are idmapped through it, so files the image gives to
	// root (0) show as the container's root. Without one the layers are
	// mounted as they are (where they cannot be idmapped).
	UserNS *os.File
	// UID and GID own the root of the writable layer: the container's
	// root as a host id. What the container writes lands there with its
	// own host ids; the shared layers are never chowned.
	UID, GID int
}

// MountIDMapped mounts ms on target as MountAll does, for a container
// with a user namespace: an overlay gets its lower layers as idmapped
// mounts (detached, held only by the overlay: nothing to clean up but
// target), and the writable layer's root belongs to m.UID:m.GID. Errors
// wrapping ErrIDMapUnsupported leave nothing mounted; the caller may fall
// back to plain layers (m without UserNS).
func MountIDMapped(ms []Mount, target string, m IDMap) error {
	return mountIDMapped(ms, target, m, true)
}

// mountIDMapped is MountIDMapped; without byFD it goes straight to the
// way of kernels before 6.15 (tests take both).
func mountIDMapped(ms []Mount, target string, m IDMap, byFD bool) error {
	if len(ms) != 1 {
		return fmt.Errorf("idmapped rootfs: %d mounts, want one", len(ms))
	}
	o, err := parseOverlay(ms[0])
	if err != nil {
		return err
	}
	// The private namespace path changes directory: target must not be
	// relative to ours.
	if target, err = filepath.Abs(target); err != nil {
		return err
	}
	// Only the roots: the overlay's root directory takes the upper's
	// owner, and the container's root must own its / to write there.
	for _, d := range []string{o.upper, o.work} {
		if d != "" {
			if err := os.Lchown(d, m.UID, m.GID); err != nil {
				return fmt.Errorf("idmapped rootfs: chown %s: %w", d, err)
			}
		}
	}
	if ms[0].Type != "overlay" || m.UserNS == nil {
		// No lower layer (an image without layers: the upper is all), or
		// plain layers asked for.
		return MountAll(ms, target)
	}
	lowers, err := idmapLowers(o.lowers, m.UserNS)
	if err != nil {
		return err
	}
	// Closing a detached clone unmounts it, which waits for an expedited
	// RCU grace period (~0.4 ms of every engine start here, off-CPU):
	// the overlay holds its own references, so that is left to another
	// goroutine.
	defer func() { go closeAll(lowers) }()
	err = unix.EINVAL
	if byFD {
		err = overlayByFD(o, lowers, target)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		// Before 6.13 overlayfs took no layer by descriptor (6.1: its
		// legacy option parser answers EOPNOTSUPP), and before 6.15 it
		// refused layers on detached mounts: attach them in a private
		// mount namespace and name them by path instead.
		err = overlayInPrivateNS(o, lowers, target)
		if errors.Is(err, unix.EINVAL) {
			// Before 5.19 overlayfs refused idmapped layers.
			err = fmt.Errorf("%w: %w", ErrIDMapUnsupported, err)
		}
	}
	return err
}

// overlayOpts is an overlay Mount taken apart: paths made absolute (or
// relative to dir), lowers uppermost first.
type overlayOpts struct {
	lowers      []string
	upper, work string
	flags       uintptr
	data        []string // other options, passed on as they are
}

func parseOverlay(m Mount) (overlayOpts, error) {
	var o overlayOpts
	abs := func(p string) string {
		if m.Dir != "" && !filepath.IsAbs(p) {
			return filepath.Join(m.Dir, p)
		}
		return p
	}
	flags, data := m.parse()
	o.flags = flags
	if m.Type == "bind" {
		if flags&unix.MS_RDONLY == 0 {
			o.upper = m.Source
		}
		return o, nil
	}
	if m.Type != "overlay" {
		return o, fmt.Errorf("idmapped rootfs: %s mount, want overlay", m.Type)
	}
	for _, kv := range strings.Split(data, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "lowerdir":
			for _, l := range strings.Split(v, ":") {
				o.lowers = append(o.lowers, abs(l))
			}
		case "upperdir":
			o.upper = abs(v)
		case "workdir":
			o.work = abs(v)
		case "":
		default:
			o.data = append(o.data, kv)
		}
	}
	if len(o.lowers) == 0 {
		return o, fmt.Errorf("idmapped rootfs: overlay without lowerdir")
	}
	return o, nil
}

// idmapLowers clones each lower directory as a detached mount seen through
// userns's mapping.
func idmapLowers(lowers []string, userns *os.File) ([]int, error) {
	fds := make([]int, 0, len(lowers))
	for _, l := range lowers {
		// Not recursive: nothing mounted below a layer belongs to it.
		fd, err := unix.OpenTree(unix.AT_FDCWD, l, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("idmapped rootfs: clone layer %s: %w", l, err)
		}
		fds = append(fds, fd)
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			closeAll(fds)
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) {
				err = fmt.Errorf("%w: idmap %s: %w", ErrIDMapUnsupported, l, err)
			}
			return nil, fmt.Errorf("idmapped rootfs: %w", err)
		}
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// overlayByFD makes the overlay with its layers given as descriptors of
// the detached idmapped mounts ("lowerdir+", 6.13), and moves it on target.
func overlayByFD(o overlayOpts, lowers []int, target string) error {
	return newOverlay(o, target, func(fs int) error {
		for i, fd := range lowers {
			// fsconfig takes no O_PATH descriptor: open the layer's root.
			dir, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open layer %s: %w", o.lowers[i], err)
			}
			err = unix.FsconfigSetFd(fs, "lowerdir+", dir)
			unix.Close(dir)
			if err != nil {
				return fmt.Errorf("overlay layer %s by descriptor: %w", o.lowers[i], err)
			}
		}
		return nil
	}, func(mnt int) error {
		return moveMount(mnt, target)
	})
}

// overlayInPrivateNS attaches the idmapped layers in a mount namespace of
// a thread's own, on a scratch tmpfs, names them by (short, relative) path
// in a classic lowerdir option, and moves the overlay to target in the
// caller's namespace. The namespace, the tmpfs and the layer mounts die
// with the thread: nothing is ever attached where the host or a crash
// could see it. Its cost is a copy of the host's mount table.
func overlayInPrivateNS(o overlayOpts, lowers []int, target string) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread leaves with its namespace and cwd.
		runtime.LockOSThread()
		errc <- inPrivateNS(o, lowers, target)
	}()
	return <-errc
}

func inPrivateNS(o overlayOpts, lowers []int, target string) error {
	host, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("idmapped rootfs: %w", err)
	}
	defer unix.Close(host)
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("idmapped rootfs: unshare: %w", err)
	}
	// Private first: the copies share the host's peer groups, and what
	// is mounted here must not propagate back.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("idmapped rootfs: private mounts: %w", err)
	}
	scratch, err := newTmpfs()
	if err != nil {
		return err
	}
	err = moveMount(scratch, target)
	unix.Close(scratch)
	if err != nil {
		return err
	}
	if err := unix.Chdir(target); err != nil {
		return fmt.Errorf("idmapped rootfs: %w", err)
	}
	names := make([]string, len(lowers))
	for i, fd := range lowers {
		names[i] = strconv.Itoa(i)
		if err := unix.Mkdir(names[i], 0o700); err != nil {
			return fmt.Errorf("idmapped rootfs: %w", err)
		}
		if err := unix.MoveMount(fd, "", unix.AT_FDCWD, names[i], unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("idmapped rootfs: attach layer %s: %w", o.lowers[i], err)
		}
	}
	return newOverlay(o, target, func(fs int) error {
		// Relative to the cwd, the scratch tmpfs: many layers fit a page.
		if err := unix.FsconfigSetString(fs, "lowerdir", strings.Join(names, ":")); err != nil {
			return fmt.Errorf("overlay layers: %w", err)
		}
		return nil
	}, func(mnt int) error {
		if err := unix.Setns(host, unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("idmapped rootfs: back to the host's mounts: %w", err)
		}
		return moveMount(mnt, target)
	})
}

func newTmpfs() (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("idmapped rootfs: scratch tmpfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "mode", "0700"); err != nil {
		return -1, fmt.Errorf("idmapped rootfs: scratch tmpfs: %w", err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("idmapped rootfs: scratch tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("idmapped rootfs: scratch tmpfs: %w", err)
	}
	return mnt, nil
}

// newOverlay creates an overlay superblock (layers set by setLowers), mounts
// it detached and hands it to attach.
func newOverlay(o overlayOpts, target string, setLowers func(fs int) error, attach func(mnt int) error) error {
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("idmapped rootfs: %w", err)
	}
	defer unix.Close(fs)
	if err := setLowers(fs); err != nil {
		return fmt.Errorf("idmapped rootfs on %s: %w", target, err)
	}
	opts := append([]string(nil), o.data...)
	if o.upper != "" {
		opts = append(opts, "upperdir="+o.upper, "workdir="+o.work)
	}
	for _, kv := range opts {
		k, v, _ := strings.Cut(kv, "=")
		if err := unix.FsconfigSetString(fs, k, v); err != nil {
			return fmt.Errorf("idmapped rootfs on %s: overlay option %s: %w", target, k, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("idmapped rootfs on %s: create overlay: %w", target, err)
	}
	var attrs int
	if o.flags&unix.MS_RDONLY != 0 {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	if o.flags&unix.MS_NOSUID != 0 {
		attrs |= unix.MOUNT_ATTR_NOSUID
	}
	if o.flags&unix.MS_NODEV != 0 {
		attrs |= unix.MOUNT_ATTR_NODEV
	}
	if o.flags&unix.MS_NOEXEC != 0 {
		attrs |= unix.MOUNT_ATTR_NOEXEC
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("idmapped rootfs on %s: %w", target, err)
	}
	defer unix.Close(mnt)
	return attach(mnt)
}

func moveMount(mnt int, target string) error {
	if err := unix.MoveMount(mnt, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("idmapped rootfs: mount on %s: %w", target, err)
	}
	return nil
}
