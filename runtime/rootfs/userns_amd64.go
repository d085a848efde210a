package rootfs

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newUserNSProc starts a process in a new user namespace, without maps, and
// returns its pid and a pidfd. It used to be a fork and exec of the calling
// binary, ptrace-stopped at its first instruction: a copy of the caller's
// page tables, an exec and an exit, ~15 ms of CPU on a VM, per container.
// This process shares our memory and descriptor table (CLONE_VM,
// CLONE_FILES: nothing is copied) and runs only cloneUserNS's few
// instructions, which never touch memory: it parks in pause(2) with every
// signal blocked until SIGKILL (or its parent thread's exit, by
// PR_SET_PDEATHSIG) ends it. A user namespace cannot be unshared by a
// threaded process, which every Go process is; clone(CLONE_NEWUSER) has no
// such limit (it refuses CLONE_FS, which is not shared).
func newUserNSProc() (pid, pidfd int, err error) {
	fd := int32(-1)
	c := userNSClone{
		flags: unix.CLONE_NEWUSER | unix.CLONE_VM | unix.CLONE_FILES | unix.CLONE_PIDFD | uintptr(unix.SIGCHLD),
		pidfd: uintptr(unsafe.Pointer(&fd)),
		ppid:  uintptr(unix.Getpid()),
		block: [2]uint32{^uint32(0), ^uint32(0)},
	}
	p, errno := c.clone()
	if errno != 0 {
		return 0, -1, fmt.Errorf("clone: %w", errno)
	}
	return int(p), int(fd), nil
}

// userNSClone is what clone needs; the child reads none of it.
type userNSClone struct {
	flags, pidfd, ppid uintptr
	block, old         [2]uint32
}

// clone blocks every signal on this thread (the child inherits the mask: no
// Go signal handler may ever run in it, it has no g and shares our memory),
// clones, and restores the mask. Nothing here lets the scheduler move us to
// another thread between the three calls (nosplit, no calls into the
// runtime, no preemption signal once they are blocked).
//
//go:nosplit
//go:norace
func (c *userNSClone) clone() (uintptr, syscall.Errno) {
	if _, _, e := syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.block)), uintptr(unsafe.Pointer(&c.old)), 8, 0, 0); e != 0 {
		return 0, e
	}
	pid, e := cloneUserNS(c.flags, c.pidfd, c.ppid)
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.old)), 0, 8, 0, 0)
	return pid, syscall.Errno(e)
}

// cloneUserNS is in userns_amd64.s.
func cloneUserNS(flags, pidfd, ppid uintptr) (pid, errno uintptr)
