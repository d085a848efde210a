package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CreateNetns makes a new network namespace and pins it by bind-mounting its
// nsfs file on dir/name, so it lives until RemoveNetns however many processes
// join or leave it. Only loopback exists in it (down until Attach or
// SetupLoopback brings it up).
func CreateNetns(dir, name string) (string, error) {
	if name == "" || filepath.Base(name) != name {
		return "", fmt.Errorf("netns name %q: %w", name, ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("netns dir: %w", err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o400)
	if err != nil {
		return "", fmt.Errorf("netns file: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	// unshare(CLONE_NEWNET) changes the calling thread only. The thread is
	// locked and never unlocked, so Go discards it when the goroutine ends
	// instead of reusing a thread that sits in the container's namespace.
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind netns: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// RemoveNetns unpins a namespace made by CreateNetns. The kernel frees it
// (and the veths in it) when the last process in it is gone too.
// Removing a missing one is no error.
func RemoveNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// SetupLoopback brings lo up in the namespace: the whole of network mode
// "none", and part of every Attach.
func SetupLoopback(netnsPath string) error {
	h, closeNS, err := nsHandle(netnsPath)
	if err != nil {
		return err
	}
	defer closeNS()
	return loUp(h)
}

func loUp(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// nsHandle opens a netlink handle whose sockets live in the namespace at
// path; the sockets keep working in that namespace from any thread.
func nsHandle(path string) (*netlink.Handle, func(), error) {
	_, h, closeNS, err := openNS(path)
	return h, closeNS, err
}

// openNS is nsHandle that also returns the namespace itself.
func openNS(path string) (netns.NsHandle, *netlink.Handle, func(), error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return ns, nil, nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	// Only rtnetlink: each family's socket costs two setns calls to open.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return ns, nil, nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return ns, h, func() { h.Close(); ns.Close() }, nil
}

// InNetns runs fn on a thread that has joined the namespace at path. The
// thread is discarded afterwards (never returned to Go's pool), so a failure
// to switch back cannot leak the namespace into other goroutines.
func InNetns(path string, fn func() error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
