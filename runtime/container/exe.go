package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/estiba/estiba/internal/openat"
	"golang.org/x/sys/unix"
)

// initExe returns the path to exec as the container's init, and a release
// func to call once the child has exec'd (or failed to start). low is the
// lowest fd number the path may name (see exeFloor).
//
// CVE-2019-5736: while init runs, /proc/<init>/exe is the runtime binary,
// and a process in the container could open it through that link and, once
// init has exec'd, write it: the next runtime run on the host would be the
// attacker's. runc answers with a sealed memfd copy per start (megabytes
// copied each time). We exec init from a private, detached, read-only clone
// of the binary's mount instead: open_tree(OPEN_TREE_CLONE) of the file and
// mount_setattr(MOUNT_ATTR_RDONLY) on it. Opening /proc/<init>/exe for
// writing then fails with EROFS; the mount is attached nowhere, so nothing
// in any mount namespace can remount it, and it disappears with the last
// reference. Three syscalls per start, no copy, no state on the host, and no
// window where another runtime version could swap a shared mount under us.
func (r *Runtime) initExe(src string, low int) (string, func(), error) {
	if src == "" {
		src = "/proc/self/exe"
	}
	path, release, err := readOnlyClone(src, low)
	if errors.Is(err, unix.EPERM) && os.Geteuid() != 0 {
		// Rootless: open_tree(OPEN_TREE_CLONE) needs CAP_SYS_ADMIN over
		// the mount namespace, which an unprivileged runtime lacks. Fall
		// back to runc's answer, a sealed memfd copy.
		return sealedCopy(src, low)
	}
	return path, release, err
}

// exeFloor returns the lowest fd number for init's binary that the child's
// fd shuffling leaves alone: the child execs /proc/self/fd/N after moving
// its stdio, the preserved fds and the extra files after them (sync,
// console, cgroup tasks files) to 0..n-1, and before its
// close-on-exec fds close. Go's forkAndExecInChild parks fds on the way
// from max(fds passed to the child)+1 up: the exec status pipe, then each
// fd below its target, at most n+1 of them. N must be above that, or the
// child's execve finds a pipe there (EACCES): that was the occasional
// "start init: fork/exec /proc/self/fd/N: permission denied" of parallel
// starts in the engine's spawner, whose stdio fds (received from the
// monitor) and sync sockets can have any number while other creates run.
// Every stdio entry must be set (see devNullStdio): one that os/exec opens
// itself at Start has a number unknown here.
func exeFloor(stdio Stdio, preserve int, extra []*os.File) int {
	high, n := 2+preserve, 3+preserve
	for _, f := range extra {
		if f != nil {
			n++
		}
	}
	for _, f := range append([]*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr}, extra...) {
		if f != nil {
			high = max(high, int(f.Fd()))
		}
	}
	return high + n + 8
}

// devNullStdio returns stdio with /dev/null for each unset stream, and a
// func that closes those once init has started (see exeFloor for why not
// leave them to os/exec).
func devNullStdio(stdio Stdio) (Stdio, func(), error) {
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for _, s := range []struct {
		f    **os.File
		flag int
	}{{&stdio.Stdin, os.O_RDONLY}, {&stdio.Stdout, os.O_WRONLY}, {&stdio.Stderr, os.O_WRONLY}} {
		if *s.f != nil {
			continue
		}
		// A plain open: os.OpenFile would start Go's poller for it
		// (see openat.ReadFile).
		fd, err := unix.Open(os.DevNull, s.flag|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return Stdio{}, nil, fmt.Errorf("init stdio: open %s: %w", os.DevNull, err)
		}
		f := os.NewFile(uintptr(fd), os.DevNull)
		*s.f = f
		opened = append(opened, f)
	}
	return stdio, closeAll, nil
}

// sealedCopy returns /proc/self/fd/N of a close-on-exec fd, at least low,
// of a sealed, read-only memfd copy of src, and its release func.
func sealedCopy(src string, low int) (string, func(), error) {
	fd, err := sealedMemfd(src)
	if err != nil {
		return "", nil, err
	}
	defer unix.Close(fd)
	return dupExe(fd, low)
}

// dupExe returns /proc/self/fd/N of a close-on-exec dup of fd, N at least
// low, and its release func.
func dupExe(fd, low int) (string, func(), error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, low)
	if err != nil {
		return "", nil, fmt.Errorf("init binary fd: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", nfd), func() { unix.Close(nfd) }, nil
}

// sealedMemfd copies src into a memfd sealed against every change, with
// plain system calls (os.Open would start Go's poller: see openat.ReadFile).
func sealedMemfd(src string) (int, error) {
	b, err := openat.ReadFile(src)
	if err != nil {
		return -1, fmt.Errorf("init binary: %w", err)
	}
	name := filepath.Base(src)
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate(name, flags|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// Before Linux 6.3 there is no MFD_EXEC: memfds are executable.
		fd, err = unix.MemfdCreate(name, flags)
	}
	if err != nil {
		return -1, fmt.Errorf("memfd for the init binary: %w", err)
	}
	if err := fillAndSeal(fd, b); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("copy the init binary: %w", err)
	}
	return fd, nil
}

func fillAndSeal(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	if err := unix.Fchmod(fd, 0o555); err != nil {
		return err
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
	return err
}

// StubCache keeps the sealed memfd copy of the stub (see stubExe) for a
// long-lived caller, the engine's spawner: a sealed memfd cannot change,
// so every create may exec the same one. Nil in Runtime: each create makes
// its own copy.
type StubCache struct {
	mu  sync.Mutex
	src string
	fd  int
}

// stubExe is initExe for the stub (Runtime.Stub). Not a clone of its
// mount: closing a detached mount unmounts it, and that unmount waits for
// an expedited RCU grace period (namespace_unlock), ~1.5-1.8 ms here at
// the end of every create. The stub is ~10 KB, so a sealed memfd copy
// (what runc does with its whole binary) costs less, and a caller with a
// StubCache copies it once. Where memfds may not be exec'd
// (vm.memfd_noexec=2), the stub runs from a read-only clone like Exe.
func (r *Runtime) stubExe(low int) (string, func(), error) {
	c := r.StubCache
	if c == nil {
		c = &StubCache{}
		defer c.close()
	}
	path, release, err := c.dup(r.Stub, low)
	if err != nil {
		return r.initExe(r.Stub, low)
	}
	return path, release, nil
}

func (c *StubCache) dup(src string, low int) (string, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.src != src {
		c.closeLocked()
		fd, err := sealedMemfd(src)
		if err != nil {
			return "", nil, err
		}
		c.src, c.fd = src, fd
	}
	return dupExe(c.fd, low)
}

func (c *StubCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

func (c *StubCache) closeLocked() {
	if c.src != "" {
		unix.Close(c.fd)
		c.src = ""
	}
}

// readOnlyClone returns /proc/self/fd/N of a close-on-exec fd, at least
// low, of a detached read-only clone of src's mount (see initExe), and its
// release func.
func readOnlyClone(src string, low int) (string, func(), error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return "", nil, fmt.Errorf("clone mount of %s: %w", src, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return "", nil, fmt.Errorf("make %s read-only: %w", src, err)
	}
	fd, err := unix.FcntlInt(uintptr(tree), unix.F_DUPFD_CLOEXEC, low)
	if err != nil {
		return "", nil, fmt.Errorf("%s fd: %w", src, err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), func() { unix.Close(fd) }, nil
}

// exeIsSealed reports whether path (an init's /proc/<pid>/exe) is a memfd
// sealed against writes and size changes. Tests use it.
func exeIsSealed(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	want := unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	return err == nil && seals&want == want
}

// exeIsReadOnly reports whether path (an init's /proc/<pid>/exe or an
// initExe path) resolves to a read-only mount. Tests use it.
func exeIsReadOnly(path string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(path, &fs) == nil && fs.Flags&unix.ST_RDONLY != 0
}

// InitName is the file name of the dedicated init binary (cmd/estiba-init).
const InitName = "estiba-init"

// InitBeside returns the path of InitName in the directory of this
// process's executable if it is a regular executable file there, else ""
// (Exe then defaults to the executable itself).
//
// Why a binary of its own: init is exec'd for every container start and
// exec, and a Go binary's start-up costs its package initializers and the
// page faults of its data and heap. The engine's binary (HTTP server,
// registry client, nftables…) spent ~28 ms of CPU per init; a binary that
// links runtime/initproc only starts in about half that.
func InitBeside() string { return beside(InitName) }

// beside returns the path of name in the directory of this process's
// executable if it is a regular executable file there, else "".
func beside(name string) string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), name)
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return ""
	}
	return p
}
