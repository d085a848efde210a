package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/openat"
)

// resolveFlags keep every lookup inside the layer root and refuse any
// symlink on the way: a symlink can only ever be a final, unfollowed name.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS |
	unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

func openBeneath(root int, p string, flags uint64) (int, error) {
	return openat.Openat2(root, p, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolveFlags})
}

// parent returns an fd for directory dir (relative to the root), creating
// missing directories 0755 as Docker does. The fd stays cached.
func (a *applier) parent(dir string) (int, error) {
	if dir == "." {
		return a.root, nil
	}
	if fd, ok := a.dirCache[dir]; ok {
		return fd, nil
	}
	fd, err := openBeneath(a.root, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err == unix.ENOENT {
		// A pooled file of that name may still be on its way: wait, so
		// the answer (ENOTDIR, or really missing) does not race it.
		if berr := a.barrier(); berr != nil {
			return -1, berr
		}
		fd, err = openBeneath(a.root, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	}
	if err == unix.ENOENT {
		fd, err = a.mkdirAll(dir)
	}
	switch {
	case err == unix.ELOOP || err == unix.EXDEV:
		return -1, fmt.Errorf("parent %q goes through a symlink: %w", dir, ErrUnsafe)
	case err == unix.ENOTDIR:
		return -1, fmt.Errorf("parent %q is not a directory: %w", dir, ErrUnsafe)
	case err != nil:
		return -1, fmt.Errorf("open parent %q: %w", dir, err)
	}
	if len(a.dirCache) >= 128 {
		a.dropCache()
	}
	a.dirCache[dir] = fd
	return fd, nil
}

// mkdirAll creates the missing ancestors of dir one at a time, each under
// an fd resolved beneath the root.
func (a *applier) mkdirAll(dir string) (int, error) {
	pfd, err := a.parent(path.Dir(dir))
	if err != nil {
		return -1, err
	}
	if err := a.checkLowers(dir); err != nil {
		return -1, err
	}
	if err := unix.Mkdirat(pfd, path.Base(dir), 0o755); err != nil && err != unix.EEXIST {
		return -1, err
	}
	a.res.ImplicitDirs = append(a.res.ImplicitDirs, dir)
	a.seen[dir] = true
	return openBeneath(a.root, dir, unix.O_RDONLY|unix.O_DIRECTORY)
}

// remove deletes an existing name so a later entry can replace it.
func (a *applier) remove(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return fmt.Errorf("replace %q: %w", base, err)
	}
	// os.RemoveAll never follows symlinks; the parent path goes through our
	// own fd's /proc link, which resolves to the verified directory.
	if err := os.RemoveAll(fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)); err != nil {
		return fmt.Errorf("replace directory %q: %w", base, err)
	}
	a.dropCache() // cached fds may point into the removed tree
	return nil
}

func (a *applier) rootDir(hdr *tar.Header) error {
	if err := a.owner(a.root, "", hdr, true); err != nil {
		return err
	}
	if err := unix.Fchmod(a.root, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod layer root: %w", err)
	}
	a.dirs = append(a.dirs, dirMeta{path: ".", ts: times(hdr)})
	return nil
}

func (a *applier) mkdir(pfd int, name, base string, hdr *tar.Header) error {
	err := unix.Mkdirat(pfd, base, uint32(hdr.Mode&0o777))
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := a.remove(pfd, base); err != nil {
				return err
			}
			err = unix.Mkdirat(pfd, base, uint32(hdr.Mode&0o777))
		} else {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	a.explicit[name] = true
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new dir: %w", err)
	}
	defer unix.Close(fd)
	if err := a.owner(fd, "", hdr, true); err != nil {
		return err
	}
	// Always chmod directories: mkdir(2) applies the umask and inherits
	// setgid from the parent, and there are few directories.
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := a.xattrs(fd, "", hdr); err != nil {
		return err
	}
	a.dirs = append(a.dirs, dirMeta{path: name, ts: times(hdr)})
	return nil
}

// create makes a new file; replace allows removing an existing name (never
// in the pool, where names are new and removal would race).
func (a *applier) create(pfd int, base string, mode uint32, replace bool) (int, error) {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, base, flags, mode)
	if err == unix.EEXIST && replace {
		if err := a.remove(pfd, base); err != nil {
			return -1, err
		}
		fd, err = unix.Openat(pfd, base, flags, mode)
	}
	return fd, err
}

// file writes a regular file. Small files whose name is new in this layer
// go to the writer pool: creating files is the slow part of unpacking, and
// creations in parallel overlap. Anything that could touch an earlier
// entry (a name seen before, links, whiteouts) runs after a barrier.
func (a *applier) file(pfd int, name, base string, hdr *tar.Header, r io.Reader) error {
	if a.pool == nil || hdr.Size > maxPooledFile || a.seen[name] {
		return a.writeFile(pfd, base, hdr, io.LimitReader(r, hdr.Size), nil, true)
	}
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	// The pool gets its own fd: the cache may close ours meanwhile.
	dfd, err := unix.FcntlInt(uintptr(pfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dup parent fd: %w", err)
	}
	return a.pool.submit(job{pfd: dfd, name: name, base: base, hdr: hdr, data: data})
}

// writeFile creates base under pfd with the content of r (or data).
func (a *applier) writeFile(pfd int, base string, hdr *tar.Header, r io.Reader, data []byte, replace bool) error {
	fd, err := a.create(pfd, base, uint32(hdr.Mode&0o777), replace)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	err = a.fillFile(fd, hdr, r, data)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return err
	}
	return utimes(pfd, base, hdr)
}

func (a *applier) fillFile(fd int, hdr *tar.Header, r io.Reader, data []byte) error {
	if r != nil {
		buf := make([]byte, 1<<20)
		for {
			n, rerr := r.Read(buf)
			if err := writeAll(fd, buf[:n]); err != nil {
				return err
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read: %w", rerr)
			}
		}
	} else if err := writeAll(fd, data); err != nil {
		return err
	}
	if err := a.owner(fd, "", hdr, false); err != nil {
		return err
	}
	if a.needChmod(hdr.Mode) {
		if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	return a.xattrs(fd, "", hdr)
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// needChmod: the create mode already holds the permission bits unless the
// umask cut some, and never holds setuid/setgid/sticky.
func (a *applier) needChmod(mode int64) bool {
	return mode&0o7000 != 0 || int(mode&0o777)&a.umask != 0
}

func (a *applier) symlink(pfd int, base string, hdr *tar.Header) error {
	err := unix.Symlinkat(hdr.Linkname, pfd, base)
	if err == unix.EEXIST {
		if err := a.remove(pfd, base); err != nil {
			return err
		}
		err = unix.Symlinkat(hdr.Linkname, pfd, base)
	}
	if err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	if err := a.owner(pfd, base, hdr, false); err != nil {
		return err
	}
	if err := a.xattrs(-1, procPath(pfd, base), hdr); err != nil {
		return err
	}
	return utimes(pfd, base, hdr)
}

func (a *applier) hardlink(pfd int, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if target == "." {
		return fmt.Errorf("hard link to the layer root: %w", ErrUnsafe)
	}
	tdir, tbase := path.Split(target)
	tpfd, err := a.parent(path.Clean(tdir))
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	// Flags 0: never follow a symlink target; link the name itself.
	err = unix.Linkat(tpfd, tbase, pfd, base, 0)
	if err == unix.EEXIST {
		if err := a.remove(pfd, base); err != nil {
			return err
		}
		err = unix.Linkat(tpfd, tbase, pfd, base, 0)
	}
	if err == unix.ENOENT {
		return fmt.Errorf("hard link target %q is not in this layer", hdr.Linkname)
	}
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

func (a *applier) mknod(pfd int, base string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	err := unix.Mknodat(pfd, base, mode, dev)
	if err == unix.EEXIST {
		if err := a.remove(pfd, base); err != nil {
			return err
		}
		err = unix.Mknodat(pfd, base, mode, dev)
	}
	if err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	if err := a.owner(pfd, base, hdr, false); err != nil {
		return err
	}
	if a.needChmod(hdr.Mode) {
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := a.xattrs(-1, procPath(pfd, base), hdr); err != nil {
		return err
	}
	return utimes(pfd, base, hdr)
}

// whiteout turns ".wh.name" into overlayfs' 0/0 character device and
// ".wh..wh..opq" into the opaque xattr on the parent.
func (a *applier) whiteout(dir, base string) error {
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	if base == ".wh..wh..opq" {
		if err := unix.Fsetxattr(pfd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %q opaque: %w", dir, err)
		}
		return nil
	}
	name := strings.TrimPrefix(base, ".wh.")
	if strings.HasPrefix(name, ".wh.") {
		return nil // other aufs metadata (.wh..wh.plnk…): meaningless here
	}
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("whiteout of %q: %w", name, ErrUnsafe)
	}
	if err := a.remove(pfd, name); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %q: %w", name, err)
	}
	return nil
}

// owner chowns when the entry's owner differs from what creation gave it.
// fd >= 0 with name "" acts on the fd; otherwise on name under fd without
// following it. It runs before chmod: chown clears setuid/setgid.
func (a *applier) owner(fd int, name string, hdr *tar.Header, always bool) error {
	if !always && hdr.Uid == a.euid && hdr.Gid == a.egid {
		return nil
	}
	var err error
	if name == "" {
		err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
	} else {
		err = unix.Fchownat(fd, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	return nil
}

// xattrAllowed is the xattr policy: user.*, security.* (file capabilities,
// IMA) and system.posix_acl_* are applied; trusted.* are refused because
// trusted.overlay.* would steer overlayfs (fake opaque dirs, redirects,
// metacopy) and nothing else in trusted.* belongs in an image. Dropped
// xattrs are counted in Result.SkippedXattrs.
func xattrAllowed(name string) bool {
	return strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "security.") ||
		name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

func (a *applier) xattrs(fd int, p string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if !xattrAllowed(name) {
			a.skipped.Add(1)
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, name, []byte(v), 0)
		} else {
			err = unix.Lsetxattr(p, name, []byte(v), 0)
		}
		// ENOTSUP: the filesystem has no such xattrs; EPERM: user.* on a
		// symlink or device. Neither can be represented here.
		if errors.Is(err, unix.ENOTSUP) || (errors.Is(err, unix.EPERM) && strings.HasPrefix(name, "user.")) {
			a.skipped.Add(1)
			continue
		}
		if err != nil {
			return fmt.Errorf("setxattr %s: %w", name, err)
		}
	}
	return nil
}

// procPath names an entry through our verified parent fd, for the few
// syscalls (lsetxattr) that have no *at form.
func procPath(pfd int, base string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
}

func times(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{ts(at), ts(hdr.ModTime)}
}

func ts(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func utimes(pfd int, base string, hdr *tar.Header) error {
	t := times(hdr)
	if err := unix.UtimesNanoAt(pfd, base, t[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// finishDirs sets directory times last: creating their children changed them.
func (a *applier) finishDirs() error {
	if err := a.barrier(); err != nil {
		return err
	}
	for _, d := range a.dirs {
		if d.path == "." {
			if err := unix.UtimesNanoAt(a.root, ".", d.ts[:], 0); err != nil {
				return fmt.Errorf("set times of layer root: %w", err)
			}
			continue
		}
		dir, base := path.Split(d.path)
		pfd, err := a.parent(path.Clean(dir))
		if err != nil {
			return err
		}
		err = unix.UtimesNanoAt(pfd, base, d.ts[:], unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && err != unix.ENOENT { // ENOENT: whited out later
			return fmt.Errorf("set times of %q: %w", d.path, err)
		}
	}
	return nil
}
