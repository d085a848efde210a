// Package procfs writes to /proc through a handle that is verified to be a
// real procfs, resolving paths beneath it without following symlinks out of
// it. A container controls the mounts it can see: a fake /proc (a tmpfs, a
// bind mount of a file over /proc/self/attr/exec, a symlink) would otherwise
// turn the runtime's own writes into writes of the attacker's choosing.
package procfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Handle is an open, verified procfs root.
type Handle struct {
	f *os.File
}

// Open opens the procfs mounted at dir (normally "/proc") and checks with
// fstatfs that it is one: a path check is not enough, as anything can be
// mounted there.
func Open(dir string) (*Handle, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open procfs %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	if err := verify(fd); err != nil {
		f.Close()
		return nil, fmt.Errorf("procfs %s: %w", dir, err)
	}
	return &Handle{f: f}, nil
}

func verify(fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return fmt.Errorf("fstatfs: %w", err)
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("not a procfs (fs type %#x)", st.Type)
	}
	return nil
}

// Close releases the handle.
func (h *Handle) Close() error { return h.f.Close() }

// OpenFile opens rel (like "self/oom_score_adj" or "sys/net/ipv4/ip_forward")
// beneath the handle. RESOLVE_BENEATH keeps the walk inside this procfs;
// RESOLVE_NO_MAGICLINKS refuses /proc/<pid>/fd-style jumps; RESOLVE_NO_XDEV
// refuses anything mounted over a procfs file. "self" itself is a plain
// symlink inside procfs, so it is allowed.
func (h *Handle) OpenFile(rel string, flags int) (*os.File, error) {
	rel = strings.TrimPrefix(filepath.Clean("/"+rel), "/")
	how := &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOCTTY),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	fd, err := unix.Openat2(int(h.f.Fd()), rel, how)
	if err != nil {
		return nil, fmt.Errorf("open /proc/%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), "/proc/"+rel)
	if err := verify(fd); err != nil {
		f.Close()
		return nil, fmt.Errorf("/proc/%s: %w", rel, err)
	}
	return f, nil
}

// WriteFile writes data to rel in one write(2): procfs files parse a single
// write, so a short write is an error.
func (h *Handle) WriteFile(rel string, data []byte) error {
	f, err := h.OpenFile(rel, unix.O_WRONLY)
	if err != nil {
		return err
	}
	n, err := f.Write(data)
	cerr := f.Close()
	switch {
	case err != nil:
		return fmt.Errorf("write /proc/%s: %w", rel, err)
	case n != len(data):
		return fmt.Errorf("write /proc/%s: short write (%d of %d bytes)", rel, n, len(data))
	case cerr != nil:
		return fmt.Errorf("close /proc/%s: %w", rel, cerr)
	}
	return nil
}

// ReadFile reads rel whole.
func (h *Handle) ReadFile(rel string) ([]byte, error) {
	f, err := h.OpenFile(rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read /proc/%s: %w", rel, err)
	}
	return b, nil
}

// SysctlPath maps a sysctl key ("net.ipv4.ip_forward") to its path below
// /proc ("sys/net/ipv4/ip_forward"). Keys with "/" or ".." are refused:
// they could otherwise name another file.
func SysctlPath(key string) (string, error) {
	if key == "" || strings.Contains(key, "/") || strings.Contains(key, "..") {
		return "", fmt.Errorf("invalid sysctl key %q", key)
	}
	return "sys/" + strings.ReplaceAll(key, ".", "/"), nil
}

// Fd is the handle's O_PATH descriptor, for openat-style calls that must
// follow a /proc magic link on purpose (reopening one of our own fds).
func (h *Handle) Fd() int { return int(h.f.Fd()) }
