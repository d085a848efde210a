package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ensureMountTargets creates, as host root, the mount points the spec
// needs inside the container's rootfs (as Docker does). With a user
// namespace the container's root is an unmapped stranger to the image's
// root-owned directories and could not create them itself. Every path is
// resolved inside the rootfs (RESOLVE_IN_ROOT): the image is hostile and
// its symlinks must not lead us out of it. What it creates belongs to
// owner (the container's root as a host id; 0 without a user namespace),
// as the image's own files do in its eyes.
func ensureMountTargets(rootfs string, mounts []specs.Mount, owner uint32) error {
	// A plain descriptor, not an os.File (which tries the poller).
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: %w", &os.PathError{Op: "open", Path: rootfs, Err: err})
	}
	defer unix.Close(root)
	var done []string
	for _, m := range mounts {
		dest := strings.Trim(filepath.Clean("/"+m.Destination), "/")
		if dest == "" || dest == "." {
			continue
		}
		// A target under an earlier mount (/dev/pts under the /dev tmpfs,
		// /sys/fs/cgroup under sysfs, a volume inside a volume) is looked
		// up in that mount, not in the rootfs: making it here would only
		// add an inode to the container's layer that nothing sees. The
		// runtime makes it in the mounted filesystem.
		if under(dest, done) {
			continue
		}
		done = append(done, dest)
		isFile := false
		if m.Type == "bind" {
			if st, err := os.Stat(m.Source); err == nil && !st.IsDir() {
				isFile = true
			}
		}
		if err := makeIn(root, dest, isFile, int(owner)); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Destination, err)
		}
	}
	return nil
}

// under reports whether dest lies beneath one of the mount points in mounted.
func under(dest string, mounted []string) bool {
	for _, m := range mounted {
		if strings.HasPrefix(dest, m+"/") {
			return true
		}
	}
	return false
}

var inRoot = &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}

// makeIn creates rel (and its parents) under the root fd unless it exists,
// owned by owner.
func makeIn(root int, rel string, isFile bool, owner int) error {
	if fd, err := unix.Openat2(root, rel, inRoot); err == nil {
		unix.Close(fd)
		return nil
	}
	parts := strings.Split(rel, "/")
	dir, err := unix.Openat2(root, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC})
	if err != nil {
		return err
	}
	defer func() { unix.Close(dir) }()
	for i, p := range parts {
		last := i == len(parts)-1
		if last && isFile {
			fd, err := unix.Openat(dir, p, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_WRONLY, 0o644)
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return err
			}
			if err == nil {
				defer unix.Close(fd)
				return chownNew(fd, "", owner)
			}
			return nil
		}
		err := unix.Mkdirat(dir, p, 0o755)
		if err == nil {
			err = chownNew(dir, p, owner)
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		// Resolve the component within the root again: it may be a
		// symlink the image planted.
		next, err := unix.Openat2(root, strings.Join(parts[:i+1], "/"), &unix.OpenHow{
			Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if err != nil {
			return err
		}
		unix.Close(dir)
		dir = next
	}
	return nil
}

// chownNew gives what makeIn just created (name in dir, or dir itself with
// name "") to owner, unless owner is root, who created it.
func chownNew(dir int, name string, owner int) error {
	if owner == 0 {
		return nil
	}
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	return unix.Fchownat(dir, name, owner, owner, flags)
}
