// Package nsthread runs a function on an OS thread of the calling process
// that has joined another process's namespaces: how the runtime works inside
// a container's mount (and net, ipc, uts, cgroup) namespaces without a
// process of its own there.
//
// The kernel rules that shape it:
//
//   - Namespaces are per thread (the task's nsproxy), so one thread can join
//     them while the rest of the process stays where it is. The Go scheduler
//     moves goroutines between threads, so the goroutine is locked to its
//     thread (runtime.LockOSThread) and never unlocked: when it returns, the
//     Go runtime ends the thread instead of giving it to other goroutines.
//     A locked thread never clones new Go threads either (the runtime's
//     template thread does), so the namespaces do not leak to them.
//   - setns(CLONE_NEWNS) refuses a caller whose fs_struct (root, cwd, umask)
//     is shared with other threads (EINVAL): the thread first unshares it
//     with unshare(CLONE_FS). Its chdir, chroot, pivot_root and umask then
//     stay its own.
//   - Joining a mount namespace sets the thread's root and cwd to the root
//     of the namespace, not to the target process's root or cwd.
//   - A thread of a multi-threaded process cannot join a user namespace
//     (setns(CLONE_NEWUSER) fails with EINVAL): refused here. The runtime
//     runs as root of the initial user namespace, which already has every
//     capability in the container's.
//   - setns(CLONE_NEWPID) and setns(CLONE_NEWTIME) only change the
//     namespace of the caller's future children (and time refuses a
//     multi-threaded caller): refused here too.
//   - setns on a pidfd (Linux 5.8) joins several namespaces at once, all or
//     none; older kernels take one /proc/<pid>/ns/<type> descriptor per
//     namespace.
package nsthread

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Allowed are the namespace types Run can join.
const Allowed = unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP

// nsFiles names the /proc/<pid>/ns entry of each type, in the order the
// fallback joins them. The mount namespace comes last: every descriptor is
// opened before any setns, since after joining the mount namespace "/proc"
// is whatever that namespace has there.
var nsFiles = []struct {
	flag int
	name string
}{
	{unix.CLONE_NEWCGROUP, "cgroup"},
	{unix.CLONE_NEWIPC, "ipc"},
	{unix.CLONE_NEWUTS, "uts"},
	{unix.CLONE_NEWNET, "net"},
	{unix.CLONE_NEWNS, "mnt"},
}

// Run runs f on a fresh OS thread that has joined the namespaces of process
// pid given by nstypes (CLONE_NEW* flags, a subset of Allowed), and returns
// f's error. The thread ends when f returns; the caller's thread and
// namespaces are never changed. f must not start goroutines that expect to
// run in those namespaces: only f's own goroutine does.
func Run(pid int, nstypes int, f func() error) error {
	if err := checkTypes(nstypes); err != nil {
		return err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.3: /proc only, with the pid-reuse race that a
		// pidfd would close.
		return run(func() error { return setnsProc(pid, -1, nstypes) }, f)
	}
	if err != nil {
		return fmt.Errorf("nsthread: pidfd of %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	return run(func() error { return setnsPidfd(pidfd, pid, nstypes) }, f)
}

// RunPidfd is Run for a process given by a pidfd (the caller's, left open).
func RunPidfd(pidfd int, nstypes int, f func() error) error {
	if err := checkTypes(nstypes); err != nil {
		return err
	}
	return run(func() error { return setnsPidfd(pidfd, 0, nstypes) }, f)
}

func checkTypes(nstypes int) error {
	switch {
	case nstypes&unix.CLONE_NEWUSER != 0:
		return errors.New("nsthread: cannot join a user namespace: a thread of a multi-threaded process is refused by setns(CLONE_NEWUSER) (and root of the initial user namespace needs none)")
	case nstypes&unix.CLONE_NEWPID != 0:
		return errors.New("nsthread: cannot join a pid namespace: setns(CLONE_NEWPID) only moves the caller's future children, not the caller")
	case nstypes&unix.CLONE_NEWTIME != 0:
		return errors.New("nsthread: cannot join a time namespace: setns(CLONE_NEWTIME) only moves future children and refuses a multi-threaded caller")
	case nstypes&^Allowed != 0:
		return fmt.Errorf("nsthread: namespace flags %#x are not namespace types", nstypes&^Allowed)
	case nstypes == 0:
		return errors.New("nsthread: no namespace to join")
	}
	return nil
}

// run runs join then f on a locked thread of its own and waits for it.
func run(join, f func() error) error {
	res := make(chan error, 1)
	go onFreshThread(join, f, res)
	return <-res
}

// onFreshThread locks the goroutine to its thread, joins, runs f, and
// returns without unlocking, so that the thread dies with the goroutine.
func onFreshThread(join, f func() error, res chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread: the Go runtime parks it for ever instead of
		// ending it when a locked goroutine exits. Start again on
		// another thread (none can take a goroutine while this one is
		// locked here), then give this one back untouched.
		started := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(started)
			if unix.Gettid() == unix.Getpid() {
				// Cannot happen (the main thread is held below); do
				// not taint it if it ever does.
				runtime.UnlockOSThread()
				res <- errors.New("nsthread: scheduled on the main thread twice")
				return
			}
			res <- joinAndRun(join, f)
		}()
		<-started
		runtime.UnlockOSThread()
		return
	}
	res <- joinAndRun(join, f)
}

func joinAndRun(join, f func() error) error {
	// Before any setns: a mount namespace is only joined by a thread
	// with an fs_struct of its own.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("nsthread: unshare(CLONE_FS): %w", err)
	}
	if err := join(); err != nil {
		return err
	}
	return f()
}

// setnsPidfd joins every namespace in one call; on kernels without setns
// on a pidfd (before 5.8: EINVAL) it falls back to /proc/<pid>/ns, checking
// through the pidfd that pid was not reused meanwhile.
func setnsPidfd(pidfd, pid, nstypes int) error {
	err := unix.Setns(pidfd, nstypes)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("nsthread: setns(pidfd, %#x): %w", nstypes, err)
	}
	if pid <= 0 {
		if pid, err = pidOf(pidfd); err != nil {
			return fmt.Errorf("nsthread: setns(pidfd) refused (before Linux 5.8?), and %w", err)
		}
	}
	return setnsProc(pid, pidfd, nstypes)
}

// pidOf reads a pidfd's pid from /proc/self/fdinfo.
func pidOf(pidfd int) (int, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		return 0, fmt.Errorf("pid of pidfd: %w", err)
	}
	var pid int
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "Pid:\t%d", &pid); err == nil && pid > 0 {
			return pid, nil
		}
	}
	return 0, errors.New("pid of pidfd: no live process")
}

// setnsProc joins pid's namespaces one type at a time, through descriptors
// all opened first. With a pidfd, the process is checked alive after the
// opens: then the descriptors are its namespaces, not a reused pid's.
func setnsProc(pid, pidfd, nstypes int) error {
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, ns := range nsFiles {
		if nstypes&ns.flag == 0 {
			continue
		}
		path := "/proc/" + strconv.Itoa(pid) + "/ns/" + ns.name
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("nsthread: open %s: %w", path, err)
		}
		fds = append(fds, fd)
	}
	if pidfd >= 0 {
		if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
			return fmt.Errorf("nsthread: process %d: %w", pid, err)
		}
	}
	i := 0
	for _, ns := range nsFiles {
		if nstypes&ns.flag == 0 {
			continue
		}
		if err := unix.Setns(fds[i], ns.flag); err != nil {
			return fmt.Errorf("nsthread: setns %s of %d: %w", ns.name, pid, err)
		}
		i++
	}
	return nil
}
