package rootfs

import (
	"fmt"

	"github.com/estiba/estiba/internal/openat"

	"golang.org/x/sys/unix"
)

// SharedDirs is a read-only tmpfs made once and shared by the containers
// of a long-lived runtime (the engine's spawner): its "empty" directory
// covers masked directories, and its "cgroup" directory, one mount point
// per hierarchy of the host (and the co-mounted controllers' symlinks), is
// the base of a read-only cgroup v1 /sys/fs/cgroup. Without it each
// container gets a tmpfs of its own for each.
//
// Why: a tmpfs per container is a superblock (super_block, shrinker, LRU
// lists) and its inodes, ~15 KiB a container on a cgroup v1 host. And
// every superblock registers a shrinker that every memory cgroup keeps
// a slot for (1 KiB per 64 shrinkers per memcg): with a memcg per
// container, each superblock a container adds costs N/64 KiB in each of
// the N containers.
//
// Nothing can write to it: its superblock is read-only (no user namespace
// but the host's may change that), its directories belong to the host's
// root, and it is mounted nowhere on the host, only held by descriptor:
// there is no path to remove, rename or swap, from the host or from a
// container. Its mounts in containers are read-only, nosuid, nodev and
// noexec.
type SharedDirs struct {
	fd   int             // detached mount of the tmpfs root
	dirs map[string]bool // names in cgroup/: directories and symlinks
}

const (
	sharedEmpty  = "empty"
	sharedCgroup = "cgroup"
)

// NewSharedDirs makes the tmpfs, with the mount points of the host's
// cgroup hierarchies as this process's /proc/self/cgroup lists them (the
// same set for every process of the host).
func NewSharedDirs() (*SharedDirs, error) {
	fd, dirs, err := makeSharedDirs()
	if err != nil {
		return nil, err
	}
	return &SharedDirs{fd: fd, dirs: dirs}, nil
}

// Close unmounts the tmpfs from this process; containers keep their
// mounts of it.
func (s *SharedDirs) Close() error { return unix.Close(s.fd) }

func makeSharedDirs() (int, map[string]bool, error) {
	b, err := openat.ReadFile("/proc/self/cgroup")
	if err != nil {
		return -1, nil, fmt.Errorf("shared dirs: %w", err)
	}
	hs, err := parseCgroupFile(b)
	if err != nil {
		return -1, nil, fmt.Errorf("shared dirs: %w", err)
	}
	// Room for the directories and nothing else, ever.
	fd, err := NewFS("tmpfs", FSConfig{Source: "tmpfs",
		Params: [][2]string{{"mode", "0755"}, {"uid", "0"}, {"gid", "0"}, {"size", "4k"}, {"nr_inodes", "128"}},
		Attrs:  unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC})
	if err != nil {
		return -1, nil, fmt.Errorf("shared dirs: %w", err)
	}
	dirs, err := fillSharedDirs(fd, hs)
	if err == nil {
		err = sealFS(fd)
	}
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("shared dirs: %w", err)
	}
	return fd, dirs, nil
}

// fillSharedDirs makes empty/ and cgroup/ with hs's mount points, through
// the detached mount fd: no path leads to them.
func fillSharedDirs(fd int, hs []hierarchy) (map[string]bool, error) {
	if err := unix.Mkdirat(fd, sharedEmpty, 0o555); err != nil {
		return nil, err
	}
	if err := unix.Mkdirat(fd, sharedCgroup, 0o755); err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	if len(hs) == 1 && hs[0].controllers == "" {
		return dirs, nil // cgroup v2 only: /sys/fs/cgroup is cgroup2 itself
	}
	cg, err := unix.Openat(fd, sharedCgroup, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(cg)
	for _, h := range hs {
		names, err := makeMountPoint(cg, h)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			dirs[n] = true
		}
	}
	return dirs, nil
}

// sealFS makes the superblock of the mount fd read-only.
func sealFS(fd int) error {
	fsfd, err := unix.Fspick(fd, "", unix.FSPICK_EMPTY_PATH|unix.FSPICK_CLOEXEC)
	if err != nil {
		return fmt.Errorf("read-only superblock: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetFlag(fsfd, "ro"); err != nil {
		return fmt.Errorf("read-only superblock: %w", err)
	}
	if _, _, e := unix.Syscall6(unix.SYS_FSCONFIG, uintptr(fsfd), unix.FSCONFIG_CMD_RECONFIGURE, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("read-only superblock: %w", fsError(fsfd, e))
	}
	return nil
}

// clone returns a detached read-only (nosuid, nodev, noexec) mount of the
// directory name of the tmpfs.
func (s *SharedDirs) clone(name string) (int, error) {
	c, err := unix.OpenTree(s.fd, name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("shared dirs: clone %s: %w", name, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(c, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(c)
		return -1, fmt.Errorf("shared dirs: %s: %w", name, err)
	}
	return c, nil
}

// hasMountPoints tells whether cgroup/ has a mount point for each of hs
// (the host's hierarchies may have changed since it was made).
func (s *SharedDirs) hasMountPoints(hs []hierarchy) bool {
	for _, h := range hs {
		if !s.dirs[h.dir()] {
			return false
		}
	}
	return true
}
