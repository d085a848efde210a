// Package topdir marks a directory whose subdirectories are independent
// trees (one per container, snapshot or state directory), so that ext4
// spreads them over the disk's block groups: FS_TOPDIR_FL, `chattr +T`.
//
// Why it matters for start latency: ext4 puts a new directory in its
// parent's block group (Orlov), and a file in its directory's group, so
// every container's directories and files crowd into the same few
// groups. On ext4 without a journal an inode allocation skips each inode
// of its group that was freed in the last 60 s (300 s more while that
// inode's table block is dirty), one buffer lookup per skipped inode,
// starting from the group's first inode. Each start frees inodes there
// (overlayfs probes its work directory at every mount: a tmpfile and a
// rename-whiteout pair) and each removal frees a container's whole tree,
// so allocations got slower with every start: measured over 300 serial
// `estiba run -d`, from 27 µs to 274 µs per inode, 22 inodes a start.
// With the flag, each new subdirectory goes to the flex group with the
// fewest directories, starting at a hash of its name: a container's files
// and frees stay among its own (4 µs per inode after the same 300 starts).
package topdir

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// fsTopdirFL is FS_TOPDIR_FL of linux/fs.h.
const fsTopdirFL = 0x00020000

// Mark sets FS_TOPDIR_FL on dir. A file system without inode flags, or
// without this one (it is an ext2/3/4 allocation hint), is no error: there
// is nothing to spread.
func Mark(dir string) error {
	fd, flags, ok, err := openFlags(dir)
	if err != nil {
		return fmt.Errorf("mark %s as a top directory: %w", dir, err)
	}
	defer unix.Close(fd)
	if !ok || flags&fsTopdirFL != 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFL)); err != nil && !unsupported(err) {
		return fmt.Errorf("mark %s as a top directory: set flags: %w", dir, err)
	}
	return nil
}

// IsMarked reports whether dir has FS_TOPDIR_FL.
func IsMarked(dir string) (bool, error) {
	fd, flags, ok, err := openFlags(dir)
	if err != nil {
		return false, err
	}
	unix.Close(fd)
	return ok && flags&fsTopdirFL != 0, nil
}

// openFlags opens dir (not through a symlink) and reads its inode flags;
// ok is false on a file system that has none. The caller closes fd.
func openFlags(dir string) (fd int, flags uint32, ok bool, err error) {
	fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, 0, false, err
	}
	flags, err = unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	switch {
	case err == nil:
		return fd, flags, true, nil
	case unsupported(err):
		return fd, 0, false, nil
	}
	unix.Close(fd)
	return -1, 0, false, fmt.Errorf("get flags: %w", err)
}

// unsupported reports the errors of file systems that have no inode flags
// (tmpfs: ENOTTY) or refuse this one (EOPNOTSUPP, EINVAL).
func unsupported(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)
}
