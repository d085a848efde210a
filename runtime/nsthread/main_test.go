package nsthread

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The main goroutine is kept on the main thread (the documented use of
// LockOSThread in init), so that TestMain can call Run from the main thread:
// the one thread the Go runtime never ends.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if err := runFromMainThread(); err != nil {
		fmt.Fprintln(os.Stderr, "Run from the main thread:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// runFromMainThread checks that a Run started on the main thread runs f
// elsewhere and leaves the main thread as it was. It joins our own uts
// namespace (any process's would do: the point is where f runs).
func runFromMainThread() error {
	if unix.Gettid() != unix.Getpid() {
		return fmt.Errorf("TestMain is not on the main thread")
	}
	if os.Geteuid() != 0 {
		return nil
	}
	var tid int
	res := make(chan error, 1)
	onFreshThread(func() error { return setnsPidfdOf(os.Getpid(), unix.CLONE_NEWUTS) }, func() error {
		tid = unix.Gettid()
		return nil
	}, res)
	if err := <-res; err != nil {
		return err
	}
	if tid == unix.Getpid() {
		return fmt.Errorf("f ran on the main thread")
	}
	if unix.Gettid() != unix.Getpid() {
		return fmt.Errorf("TestMain moved off the main thread")
	}
	return nil
}

func setnsPidfdOf(pid, types int) error {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	return setnsPidfd(pidfd, pid, types)
}
