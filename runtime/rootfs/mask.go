package rootfs

import (
	"errors"
	"fmt"
	"os"

	"github.com/estiba/estiba/internal/openat"

	"golang.org/x/sys/unix"
)

// readonlyPath makes path, and everything mounted below it, read-only (and
// nosuid, nodev, noexec) with a recursive bind of it onto itself. A missing
// path is skipped, as the spec allows.
func (r *Root) readonlyPath(path string) error {
	dst, err := openInRoot(r.fd, path, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("readonly path: %w", err)
	}
	defer unix.Close(dst)
	src, err := unix.OpenTree(dst, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("readonly path %s: bind: %w", path, err)
	}
	defer unix.Close(src)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(src, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("readonly path %s: %w", path, err)
	}
	if err := unix.MoveMount(src, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("readonly path %s: mount: %w", path, err)
	}
	return nil
}

// masker holds the sources of masks, made once per container: the verified
// /dev/null for files and one read-only empty directory (Options.Shared's,
// or a tmpfs) whose clones cover directories.
type masker struct {
	root    *Root
	devNull int
	empty   int
}

func (r *Root) maskPaths(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	m := &masker{root: r, devNull: -1, empty: -1}
	defer m.close()
	for _, p := range paths {
		if err := m.mask(p); err != nil {
			return fmt.Errorf("masked path %s: %w", p, err)
		}
	}
	return nil
}

func (m *masker) close() {
	for _, fd := range []int{m.devNull, m.empty} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func (m *masker) mask(path string) error {
	dst, err := openInRoot(m.root.fd, path, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	var st unix.Stat_t
	if err := unix.Fstat(dst, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return m.maskDir(dst)
	}
	if m.devNull < 0 {
		if m.devNull, err = openDevNull(m.root.fd); err != nil {
			return err
		}
	}
	return bindFd(m.devNull, dst, false)
}

// maskTmpfs is the empty, read-only tmpfs over masked directories.
var maskTmpfs = mountOptions{
	attrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
	data:    []string{"mode=0555"},
}

func (m *masker) maskDir(dst int) error {
	if m.empty >= 0 {
		return bindFd(m.empty, dst, false)
	}
	src, err := m.emptyDir()
	if err != nil {
		return err
	}
	if err := unix.MoveMount(src, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		unix.Close(src)
		return fmt.Errorf("mount empty tmpfs: %w", err)
	}
	// Now attached, the mount can be cloned for the next directories.
	m.empty = src
	return nil
}

// emptyDir is a detached mount of an empty read-only directory: the
// runtime's shared one (Options.Shared) or a new tmpfs.
func (m *masker) emptyDir() (int, error) {
	if sh := m.root.opts.Shared; sh != nil {
		if fd, err := sh.clone(sharedEmpty); err == nil {
			return fd, nil
		}
	}
	return m.root.newFS("tmpfs", "tmpfs", maskTmpfs)
}

// openDevNull opens the container's /dev/null and checks it is the null
// device. A container able to write its /dev (a bind-mounted /dev, a
// createContainer hook) could put a symlink or another file there, and the
// "mask" would become a writable bind of /proc/sys/... or of the host file
// it points to (CVE-2025-31133): no symlink is followed and the node must be
// character device 1:3.
func openDevNull(rootfd int) (int, error) {
	fd, err := openat.Openat2(rootfd, "dev/null", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, fmt.Errorf("open /dev/null to mask with: %w", err)
	}
	if err := isDevNull(fd); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("refusing to mask with /dev/null: %w", err)
	}
	return fd, nil
}

func isDevNull(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		return fmt.Errorf("not the null device (mode %#o, rdev %d:%d)", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return nil
}

// bindFd bind-mounts what the descriptor src names onto what dst names.
func bindFd(src, dst int, recursive bool) error {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(src, "", flags)
	if err != nil {
		return fmt.Errorf("clone mount: %w", err)
	}
	defer unix.Close(tree)
	if err := unix.MoveMount(tree, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	return nil
}

// MountConsole bind-mounts the pseudo-terminal pty (the container's end,
// opened from its devpts) onto /dev/console, after Pivot. The pty must be a
// devpts terminal and /dev/console a plain file or node, never a symlink:
// else the bind could land on a procfs file (CVE-2025-52565).
func (r *Root) MountConsole(pty *os.File) error {
	if r == nil || r.fd < 0 {
		return errors.New("rootfs: MountConsole on a closed Root")
	}
	ptyfd := int(pty.Fd())
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(ptyfd, &sfs); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(ptyfd, &st); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if sfs.Type != unix.DEVPTS_SUPER_MAGIC || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return fmt.Errorf("console: %s is not a devpts terminal", pty.Name())
	}
	dst, err := openInRoot(r.fd, "/dev/console", unix.O_PATH|unix.O_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		dst, err = createFileInRoot(r.fd, "/dev/console")
	}
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer unix.Close(dst)
	if err := unix.Fstat(dst, &st); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFCHR {
		return fmt.Errorf("console: /dev/console is not a file or a node (mode %#o)", st.Mode)
	}
	if err := bindFd(ptyfd, dst, false); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
