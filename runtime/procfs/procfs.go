// Package procfs opens files of procfs (and sysfs) so that a write meant for
// the kernel reaches the kernel. Inside a container /proc is reachable by a
// hostile workload: a spec mount, a symlink or a racing bind can put something
// else at /proc/sys/kernel/core_pattern or /proc/self/attr/exec (the
// CVE-2025-52881 family). A Handle is a procfs root checked with fstatfs, and
// every open below it refuses symlinks, magic links and mount crossings, then
// checks the file system magic of what it opened.
package procfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/estiba/estiba/internal/openat"

	"golang.org/x/sys/unix"
)

// ErrNotProcfs is returned when an opened file is not on the expected file
// system: something is mounted over it or a symlink redirected it.
var ErrNotProcfs = errors.New("not on the expected file system")

// Handle is an O_PATH descriptor of the root of a procfs instance whose file
// system type has been verified.
type Handle struct {
	fd int
}

// Open returns a Handle on a procfs that nothing is mounted over: a fresh
// private instance (fsopen) when the kernel allows it, else a non-recursive
// clone of /proc (open_tree, which drops every overmount), else /proc itself.
// Opens through the last fallback still refuse to cross an overmount
// (RESOLVE_NO_XDEV), so the fallbacks cost features, not safety.
// The procfs is that of the caller's pid namespace at the time of the call.
func Open() (*Handle, error) {
	fd, err := openFresh()
	if err != nil {
		fd, err = unix.OpenTree(unix.AT_FDCWD, "/proc", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	}
	if err != nil {
		fd, err = openat.Openat2(unix.AT_FDCWD, "/proc", &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("open procfs: %w", err)
	}
	if err := CheckFS(fd, unix.PROC_SUPER_MAGIC); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open procfs: /proc: %w", err)
	}
	return &Handle{fd: fd}, nil
}

// openFresh mounts a new, detached procfs instance; detached means no
// overmount can exist on it and no one else can see it.
func openFresh() (int, error) {
	fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	return unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
}

// Shared is one Handle for a long-lived caller (the engine's spawner), made
// at the first Get and kept: a fresh procfs instance costs a mount, and
// closing it an unmount that waits for an expedited RCU grace period
// (~0.3-0.5 ms a create here). Its procfs is that of the pid namespace of
// the first caller; its descriptor is close-on-exec.
type Shared struct {
	mu sync.Mutex
	h  *Handle
}

// Get returns the shared Handle, opening it the first time. The caller
// must not close it.
func (s *Shared) Get() (*Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		h, err := Open()
		if err != nil {
			return nil, err
		}
		s.h = h
	}
	return s.h, nil
}

// At is a Handle on the procfs root fd, which stays the caller's: the
// Handle must not be closed, nor used after fd is.
func At(fd int) (*Handle, error) {
	if err := CheckFS(fd, unix.PROC_SUPER_MAGIC); err != nil {
		return nil, fmt.Errorf("procfs root: %w", err)
	}
	return &Handle{fd: fd}, nil
}

// Close releases the procfs root.
func (h *Handle) Close() error {
	if h == nil || h.fd < 0 {
		return nil
	}
	err := unix.Close(h.fd)
	h.fd = -1
	return err
}

// Fd is the O_PATH descriptor of the procfs root, valid until Close.
func (h *Handle) Fd() int { return h.fd }

// OpenFile opens name (relative to the procfs root, e.g. "sys/kernel/pid_max"
// or "self/oom_score_adj") with flags (O_RDONLY, O_WRONLY...). A leading
// "self" or "thread-self" is replaced by its target (pid or
// pid/task/tid), because symlinks are refused. Callers of
// "thread-self" must hold runtime.LockOSThread.
func (h *Handle) OpenFile(name string, flags int) (*os.File, error) {
	rel, err := h.resolveSelf(strings.TrimPrefix(name, "/"))
	if err != nil {
		return nil, err
	}
	fd, err := openat.Openat2(h.fd, rel, &unix.OpenHow{
		Flags: uint64(flags) | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		// BENEATH: nothing outside procfs; NO_SYMLINKS/NO_MAGICLINKS: no
		// redirection; NO_XDEV: no file of another mount placed over a
		// procfs file.
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return nil, fmt.Errorf("open /proc/%s: %w", rel, err)
	}
	if err := CheckFS(fd, unix.PROC_SUPER_MAGIC); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open /proc/%s: %w", rel, err)
	}
	return os.NewFile(uintptr(fd), "/proc/"+rel), nil
}

// WriteFile writes data to the procfs file name in a single write(2), as
// procfs files expect.
func (h *Handle) WriteFile(name string, data []byte) error {
	f, err := h.OpenFile(name, unix.O_WRONLY)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %s: %w", f.Name(), werr)
	}
	return cerr
}

// ReadFile reads the procfs file name.
func (h *Handle) ReadFile(name string) ([]byte, error) {
	f, err := h.OpenFile(name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return b, nil
}

// WriteSysctl writes a sysctl by its dotted or slashed name
// ("net.ipv4.ip_forward" or "net/ipv4/ip_forward") under /proc/sys.
func (h *Handle) WriteSysctl(key, value string) error {
	return h.WriteFile("sys/"+SysctlPath(key), []byte(value))
}

// SysctlPath turns a sysctl key into its path below /proc/sys. As sysctl(8)
// does, the first separator decides the form: in a dotted key slashes stand
// for dots ("net.ipv4.conf.eth0/1.forwarding" names the interface "eth0.1"),
// a slashed key is a path already.
func SysctlPath(key string) string {
	if i := strings.IndexAny(key, "./"); i < 0 || key[i] == '/' {
		return key
	}
	// Swap '.' and '/': dots separate levels, slashes stand for dots.
	b := []byte(key)
	for i, c := range b {
		switch c {
		case '.':
			b[i] = '/'
		case '/':
			b[i] = '.'
		}
	}
	return string(b)
}

// resolveSelf replaces a leading "self" or "thread-self" by what that
// symlink says in this procfs instance: the instance may belong to another pid
// namespace than the caller's (a clone of the host's /proc), so getpid() would
// name another process.
func (h *Handle) resolveSelf(rel string) (string, error) {
	first, rest, _ := strings.Cut(rel, "/")
	if first != "self" && first != "thread-self" {
		return rel, nil
	}
	repl, err := readlinkat(h.fd, first)
	if err != nil {
		return "", fmt.Errorf("resolve /proc/%s: %w", first, err)
	}
	if rest == "" {
		return repl, nil
	}
	return repl + "/" + rest, nil
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	if n == len(buf) {
		return "", fmt.Errorf("readlink %s: link too long", name)
	}
	return string(buf[:n]), nil
}

// CheckFS returns an error wrapping ErrNotProcfs unless fd is on a file
// system with the given magic (unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC...).
func CheckFS(fd int, magic int64) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return fmt.Errorf("fstatfs: %w", err)
	}
	if int64(st.Type) != magic {
		return fmt.Errorf("%w: magic %#x, want %#x", ErrNotProcfs, st.Type, magic)
	}
	return nil
}

// OpenSysfs opens name below /sys (e.g. "kernel/mm/transparent_hugepage/enabled")
// refusing symlinks, magic links and mount crossings below /sys, and checks
// that both /sys and the file are on sysfs.
func OpenSysfs(name string, flags int) (*os.File, error) {
	rel := strings.TrimPrefix(name, "/")
	root, err := openat.Openat2(unix.AT_FDCWD, "/sys", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("open /sys: %w", err)
	}
	defer unix.Close(root)
	if err := CheckFS(root, unix.SYSFS_MAGIC); err != nil {
		return nil, fmt.Errorf("open /sys: %w", err)
	}
	fd, err := openat.Openat2(root, rel, &unix.OpenHow{
		Flags:   uint64(flags) | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return nil, fmt.Errorf("open /sys/%s: %w", rel, err)
	}
	if err := CheckFS(fd, unix.SYSFS_MAGIC); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open /sys/%s: %w", rel, err)
	}
	return os.NewFile(uintptr(fd), "/sys/"+rel), nil
}
