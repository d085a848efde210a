// Package inroot is how the daemon, as host root, makes and writes files
// inside a container's rootfs before the container runs: mount points, and
// the container's /etc/hostname, /etc/hosts and /etc/resolv.conf.
//
// The image is hostile. Every path is resolved inside the rootfs
// (RESOLVE_IN_ROOT, no magic links), so its symlinks cannot lead out of it,
// and nothing of the image's is ever opened for writing: a file is replaced
// by a new one (a FIFO would block the daemon; a device node would be the
// host's device). What is made belongs to the owner given (the container's
// root as a host id; 0 without a user namespace), as the image's own files
// do in its eyes.
package inroot

import (
	"errors"
	"os"
	"strings"

	"github.com/estiba/estiba/internal/openat"
	"golang.org/x/sys/unix"
)

var inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// OpenRoot opens rootfs as the root of later calls (a plain descriptor, not
// an os.File, which tries the poller).
func OpenRoot(rootfs string) (int, error) {
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	return fd, nil
}

// Make creates rel (and its parents) under root unless it exists: an empty
// file when isFile, else a directory.
func Make(root int, rel string, isFile bool, owner int) error {
	if fd, err := openat.Openat2(root, rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: uint64(inRoot)}); err == nil {
		unix.Close(fd)
		return nil
	}
	dir, name, err := parent(root, rel, owner)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if !isFile {
		if err := mkdir(dir, name, owner); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		return nil
	}
	fd, err := create(dir, name)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return chownNew(fd, "", owner)
}

// WriteFile makes rel under root a new regular file holding data (mode
// 0644), in place of whatever was there, unless that is a directory. Its
// parents are made as Make makes them.
func WriteFile(root int, rel string, data []byte, owner int) error {
	dir, name, err := parent(root, rel, owner)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	fd, err := create(dir, name)
	if errors.Is(err, unix.EEXIST) {
		// Replaced, not opened: what is there is the image's, or what the
		// container left at its last run.
		if err = unix.Unlinkat(dir, name, 0); err == nil {
			fd, err = create(dir, name)
		}
	}
	if err != nil {
		return err
	}
	if err = openat.WriteAll(fd, data); err == nil {
		err = chownNew(fd, "", owner)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

func create(dir int, name string) (int, error) {
	return unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_WRONLY, 0o644)
}

// parent returns rel's parent directory under root (made if missing, each
// component resolved within the root again: it may be a symlink the image
// planted) and rel's last component.
func parent(root int, rel string, owner int) (int, string, error) {
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	dir, err := unix.Openat2(root, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC})
	if err != nil {
		return -1, "", err
	}
	for i, p := range parts[:len(parts)-1] {
		if err := mkdir(dir, p, owner); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(dir)
			return -1, "", err
		}
		next, err := openat.Openat2(root, strings.Join(parts[:i+1], "/"), &unix.OpenHow{
			Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: uint64(inRoot)})
		unix.Close(dir)
		if err != nil {
			return -1, "", err
		}
		dir = next
	}
	return dir, parts[len(parts)-1], nil
}

// mkdir makes name in dir, owned by owner; EEXIST if it is there.
func mkdir(dir int, name string, owner int) error {
	if err := unix.Mkdirat(dir, name, 0o755); err != nil {
		return err
	}
	return chownNew(dir, name, owner)
}

// chownNew gives what was just created (name in dir, or dir itself with
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
