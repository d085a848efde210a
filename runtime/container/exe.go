package container

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultExeDir holds the read-only bind mount of the runtime binary.
const DefaultExeDir = "/run/estiba/exe"

// initExe returns the binary to re-exec as init.
//
// CVE-2019-5736: while init runs, /proc/<init>/exe is the runtime binary,
// and a process in the container could open it through that link and, once
// init has exec'd, write it: the next runtime run on the host would be the
// attacker's. runc answers with a sealed memfd copy per start (a copy of
// megabytes each time). We exec init from a read-only bind mount of the
// binary instead, made once per binary and reused by every start: opening
// /proc/<init>/exe for writing then fails with EROFS, since the link
// resolves to that mount, and remounting it needs CAP_SYS_ADMIN over the
// host's mount namespace. The cost per start is a stat and a statfs.
func (r *Runtime) initExe() (string, error) {
	if r.Exe != "" {
		return r.Exe, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("runtime binary: %w", err)
	}
	dir := r.ExeDir
	if dir == "" {
		dir = DefaultExeDir
	}
	target := filepath.Join(dir, "estiba-runtime")
	if sealedCopy(self, target) {
		return target, nil
	}
	if err := bindReadOnly(self, dir, target); err != nil {
		return "", fmt.Errorf("read-only runtime binary: %w", err)
	}
	return target, nil
}

// sealedCopy reports whether target is a read-only mount of self's inode.
func sealedCopy(self, target string) bool {
	var a, b unix.Stat_t
	var fs unix.Statfs_t
	if unix.Stat(self, &a) != nil || unix.Stat(target, &b) != nil || unix.Statfs(target, &fs) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino && fs.Flags&unix.ST_RDONLY != 0
}

// bindReadOnly (re)creates target as a read-only bind mount of self. A lock
// file serializes concurrent creates; a stale mount of an older binary is
// detached first.
func bindReadOnly(self, dir, target string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	if sealedCopy(self, target) {
		return nil // another runtime made it meanwhile
	}
	for unix.Unmount(target, unix.MNT_DETACH) == nil {
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY|unix.O_CLOEXEC, 0o755)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(self, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", self, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		unix.Unmount(target, unix.MNT_DETACH)
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}
