package procfs

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestSysctlPath(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_forward":              "net/ipv4/ip_forward",
		"net/ipv4/ip_forward":              "net/ipv4/ip_forward",
		"net.ipv4.conf.eth0/1.forwarding":  "net/ipv4/conf/eth0.1/forwarding",
		"kernel.shm_rmid_forced":           "kernel/shm_rmid_forced",
		"net/ipv4/conf/eth0.1/rp_filter":   "net/ipv4/conf/eth0.1/rp_filter",
		"fs.mqueue.queues_max":             "fs/mqueue/queues_max",
		"net.ipv6.conf.all.disable_ipv6":   "net/ipv6/conf/all/disable_ipv6",
		"net.ipv4.ping_group_range":        "net/ipv4/ping_group_range",
		"vm.overcommit_memory":             "vm/overcommit_memory",
		"net.core.somaxconn":               "net/core/somaxconn",
		"user.max_user_namespaces":         "user/max_user_namespaces",
		"kernel.sem":                       "kernel/sem",
		"net.ipv4.conf.default.rp_filter":  "net/ipv4/conf/default/rp_filter",
		"net.ipv4.ip_unprivileged_port_st": "net/ipv4/ip_unprivileged_port_st",
	} {
		if got := SysctlPath(in); got != want {
			t.Errorf("SysctlPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenRead(t *testing.T) {
	h, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b, err := h.ReadFile("self/status")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("\nPid:\t%d\n", os.Getpid()); !strings.Contains(string(b), want) {
		t.Errorf("self/status lacks %q", want)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err = h.ReadFile("thread-self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d ", unix.Gettid()); !strings.HasPrefix(string(b), want) {
		t.Errorf("thread-self/stat = %q, want tid %s", b, want)
	}
}

func TestRefusesRedirection(t *testing.T) {
	h, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tests := []struct {
		name string
		path string
		want error
	}{
		{"symlink", "mounts", unix.ELOOP},                    // -> self/mounts
		{"magic link", "self/root/etc/hostname", unix.ELOOP}, // root is a magic link
		{"self cwd", "self/cwd", unix.ELOOP},
		{"dotdot out", "../etc/hostname", unix.EXDEV},
		{"absolute", "/etc/hostname", nil}, // taken relative to /proc: no such file
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := h.OpenFile(tc.path, unix.O_RDONLY)
			if err == nil {
				f.Close()
				t.Fatalf("%s opened", tc.path)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestOvermount runs on a thread with its own mount and network namespaces
// (the thread dies with its goroutine, taking them along): a tmpfs over
// /proc/sys/kernel must not be written through, whichever procfs root is
// used.
func TestOvermount(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	if err := onThrowawayThread(overmountChecks); err != nil {
		t.Fatal(err)
	}
}

// onThrowawayThread runs fn on an OS thread that exits afterwards, with
// whatever namespaces fn gave it. Never the main thread: Go keeps that one
// alive, and /proc/self names it, so it must stay in the test's namespaces.
func onThrowawayThread(fn func() error) error {
	for {
		errc := make(chan error, 1)
		mainThread := errors.New("main thread")
		go func() {
			runtime.LockOSThread()
			if unix.Gettid() == unix.Getpid() {
				runtime.UnlockOSThread()
				errc <- mainThread
				return
			}
			errc <- fn() // never unlocked: the thread exits with the goroutine
		}()
		if err := <-errc; err != mainThread {
			return err
		}
	}
}

func overmountChecks() error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWNET); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", "/proc/sys/kernel", "tmpfs", 0, ""); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/kernel/hostname", []byte("fake\n"), 0o644); err != nil {
		return err
	}
	// A fresh procfs does not have the overmount.
	h, err := Open()
	if err != nil {
		return err
	}
	defer h.Close()
	b, err := h.ReadFile("sys/kernel/ostype")
	if err != nil || string(b) != "Linux\n" {
		return fmt.Errorf("fresh procfs: %q, %v", b, err)
	}
	// The fallback, /proc itself, refuses to cross the overmount.
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	plain := &Handle{fd: fd}
	defer plain.Close()
	if f, err := plain.OpenFile("sys/kernel/hostname", unix.O_RDONLY); err == nil {
		f.Close()
		return errors.New("opened a file of the tmpfs over /proc/sys/kernel")
	} else if !errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("overmount: %v, want EXDEV", err)
	}
	// Writes reach the kernel: a sysctl of this thread's own netns.
	if err := h.WriteSysctl("net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	if b, err := h.ReadFile("sys/net/ipv4/ip_forward"); err != nil || string(b) != "1\n" {
		return fmt.Errorf("ip_forward after write: %q, %v", b, err)
	}
	// A tmpfs root is refused by the magic check.
	tfd, err := unix.Open("/proc/sys/kernel", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if err := CheckFS(tfd, unix.PROC_SUPER_MAGIC); !errors.Is(err, ErrNotProcfs) {
		return fmt.Errorf("CheckFS on tmpfs: %v", err)
	}
	return nil
}

func TestOpenSysfs(t *testing.T) {
	f, err := OpenSysfs("kernel/uevent_seqnum", unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := OpenSysfs("class/net/lo", unix.O_RDONLY); !errors.Is(err, unix.ELOOP) {
		t.Errorf("symlink in sysfs: %v, want ELOOP", err)
	}
}

func TestShared(t *testing.T) {
	var s Shared
	h1, err := s.Get()
	if err != nil {
		t.Fatal(err)
	}
	h2, err := s.Get()
	if err != nil || h2 != h1 {
		t.Fatalf("second Get: %p %v, want %p", h2, err, h1)
	}
	if err := CheckFS(h1.Fd(), unix.PROC_SUPER_MAGIC); err != nil {
		t.Fatal(err)
	}
	if flags, err := unix.FcntlInt(uintptr(h1.Fd()), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("fd flags %#x %v: not close-on-exec", flags, err)
	}
	h1.Close()
}
