package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func fileMode(m os.FileMode) *os.FileMode { return &m }

// defaultDevices are the nodes runtime-spec config-linux.md "Default Devices"
// requires.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: fileMode(0o666)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: fileMode(0o666)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: fileMode(0o666)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: fileMode(0o666)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: fileMode(0o666)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: fileMode(0o666)},
}

// devTmpfs is the /dev a spec without a /dev mount gets (runc's default).
var devTmpfs = specs.Mount{
	Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
	Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
}

// setupDev creates the default devices, linux.devices and the /dev symlinks.
// When /dev is a bind mount it is not ours to fill: nodes already there with
// the right type and numbers are accepted, anything else is an error rather
// than a write into the host's directory.
func (r *Root) setupDev(devBind bool) error {
	devs := append(append([]specs.LinuxDevice(nil), defaultDevices...), r.linuxDevices()...)
	if devBind {
		for _, d := range devs {
			if err := r.checkDevice(d); err != nil {
				return err
			}
		}
		return nil
	}
	// mknod applies the umask; the modes of the spec are exact.
	old := unix.Umask(0)
	defer unix.Umask(old)
	dirs := map[string]int{}
	defer func() {
		for _, fd := range dirs {
			unix.Close(fd)
		}
	}()
	for _, d := range devs {
		if err := r.createDevice(dirs, d); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	return r.devSymlinks(dirs)
}

func (r *Root) linuxDevices() []specs.LinuxDevice {
	if r.spec.Linux == nil {
		return nil
	}
	return r.spec.Linux.Devices
}

// parentDir opens (creating) the directory holding path, caching the
// descriptors since most devices share /dev.
func (r *Root) parentDir(dirs map[string]int, path string) (int, string, error) {
	dir, base := filepath.Split(filepath.Clean("/" + path))
	if fd, ok := dirs[dir]; ok {
		return fd, base, nil
	}
	fd, err := mkdirAllInRoot(r.fd, dir)
	if err != nil {
		return -1, "", err
	}
	dirs[dir] = fd
	return fd, base, nil
}

func devType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("unknown device type %q", t)
}

func (r *Root) createDevice(dirs map[string]int, d specs.LinuxDevice) error {
	typ, err := devType(d.Type)
	if err != nil {
		return err
	}
	pfd, base, err := r.parentDir(dirs, d.Path)
	if err != nil {
		return err
	}
	if r.opts.InUserNS {
		if err := removeAt(pfd, base); err != nil {
			return err
		}
		return r.bindHostDevice(pfd, base, d)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	dev := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	// On a fresh /dev the path is free; only when it is taken is the
	// image's file removed (never followed: unlink removes a symlink
	// itself) and the node made again.
	err = unix.Mknodat(pfd, base, typ|mode, dev)
	if errors.Is(err, unix.EEXIST) {
		if err = removeAt(pfd, base); err == nil {
			err = unix.Mknodat(pfd, base, typ|mode, dev)
		}
	}
	if err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	if uid, gid := idOr(d.UID), idOr(d.GID); uid != 0 || gid != 0 {
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	return nil
}

func idOr(p *uint32) int {
	if p == nil {
		return 0
	}
	return int(*p)
}

// bindHostDevice: in a user namespace mknod is refused, so the host's node
// (same path) is bind-mounted onto an empty file, after checking it is the
// device the spec names.
func (r *Root) bindHostDevice(pfd int, base string, d specs.LinuxDevice) error {
	src, err := unix.OpenTree(unix.AT_FDCWD, d.Path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("bind host node: %w", err)
	}
	defer unix.Close(src)
	if err := checkNode(src, d); err != nil {
		return fmt.Errorf("host node: %w", err)
	}
	dst, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("create bind target: %w", err)
	}
	defer unix.Close(dst)
	if err := unix.MoveMount(src, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind host node: %w", err)
	}
	return nil
}

// checkDevice accepts a node of a bind-mounted /dev if it is the device asked.
func (r *Root) checkDevice(d specs.LinuxDevice) error {
	fd, err := openInRoot(r.fd, d.Path, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("device %s: /dev is a bind mount and does not hold it: %w", d.Path, err)
	}
	defer unix.Close(fd)
	if err := checkNode(fd, d); err != nil {
		return fmt.Errorf("device %s in bind-mounted /dev: %w", d.Path, err)
	}
	return nil
}

func checkNode(fd int, d specs.LinuxDevice) error {
	typ, err := devType(d.Type)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != typ || (typ != unix.S_IFIFO && st.Rdev != unix.Mkdev(uint32(d.Major), uint32(d.Minor))) {
		return fmt.Errorf("not the device %s %d:%d (mode %#o, rdev %d:%d)", d.Type, d.Major, d.Minor,
			st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return nil
}

// devSymlinks makes the links of runtime-spec runtime.md: the standard
// streams, /dev/fd, /dev/core when the kernel has /proc/kcore, and /dev/ptmx
// pointing at the devpts instance of the container.
func (r *Root) devSymlinks(dirs map[string]int) error {
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Lstat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	pfd, _, err := r.parentDir(dirs, "/dev/ptmx")
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], pfd, filepath.Base(l[1])); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	// An image's or a node's /dev/ptmx would be the host's multiplexer;
	// the container's is the one of its own devpts: replaced if taken.
	err = unix.Symlinkat("pts/ptmx", pfd, "ptmx")
	if errors.Is(err, unix.EEXIST) {
		if err = removeAt(pfd, "ptmx"); err == nil {
			err = unix.Symlinkat("pts/ptmx", pfd, "ptmx")
		}
	}
	if err != nil {
		return fmt.Errorf("symlink /dev/ptmx: %w", err)
	}
	return nil
}

// removeAt removes the non-directory name in dir, if any.
func removeAt(dir int, name string) error {
	if err := unix.Unlinkat(dir, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}
