package snapshot

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) to perform for a snapshot. Callers (the engine, the
// runtime) receive mounts, never storage paths.
type Mount struct {
	Type    string   // "overlay" or "bind"
	Source  string   // for overlay "overlay"; for bind the source directory
	Options []string // fstab-style: "ro", "rbind", "lowerdir=…"
	// Dir, when set, is the directory that relative paths in Options are
	// relative to. Overlay option strings must fit one page; with many
	// layers only relative short links fit, so mount(2) must run from Dir.
	Dir string
}

var flagOpts = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":     {false, unix.MS_RDONLY},
	"rw":     {true, unix.MS_RDONLY},
	"bind":   {false, unix.MS_BIND},
	"rbind":  {false, unix.MS_BIND | unix.MS_REC},
	"nosuid": {false, unix.MS_NOSUID},
	"nodev":  {false, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC},
}

func (m Mount) parse() (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		if f, ok := flagOpts[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// MountOn mounts m on target.
func (m Mount) MountOn(target string) error {
	flags, data := m.parse()
	if len(data) >= unix.Getpagesize() {
		return fmt.Errorf("mount %s on %s: options are %d bytes, over one page", m.Type, target, len(data))
	}
	if m.Dir == "" {
		return m.mount(target, flags, data)
	}
	// chdir is per process in Go unless the thread has its own fs_struct:
	// unshare(CLONE_FS) on a locked thread that is never unlocked, so the
	// runtime retires the thread instead of reusing its working directory.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs: %w", err)
			return
		}
		if err := unix.Chdir(m.Dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", m.Dir, err)
			return
		}
		errc <- m.mount(target, flags, data)
	}()
	return <-errc
}

func (m Mount) mount(target string, flags uintptr, data string) error {
	typ := m.Type
	if flags&unix.MS_BIND != 0 {
		typ = ""
	}
	if err := unix.Mount(m.Source, target, typ, flags, data); err != nil {
		return fmt.Errorf("mount %s %s on %s (%s): %w", m.Type, m.Source, target, data, err)
	}
	// A bind mount ignores MS_RDONLY on creation; it takes a remount.
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	return nil
}

// MountAll mounts ms on target in order, undoing them all on error.
func MountAll(ms []Mount, target string) error {
	for i, m := range ms {
		if err := m.MountOn(target); err != nil {
			for range i {
				unix.Unmount(target, unix.MNT_DETACH)
			}
			return err
		}
	}
	return nil
}

// Unmount unmounts everything stacked on target.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}
