package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

const seccompSetModeFilter = 1 // SECCOMP_SET_MODE_FILTER

// Install loads prog with seccomp(2) into the calling thread, or into every
// thread of the process if prog.Flags has FlagTsync. The caller must have set
// no_new_privs (prctl PR_SET_NO_NEW_PRIVS) or hold CAP_SYS_ADMIN: whether a
// container gets no_new_privs is the caller's decision (process.noNewPrivileges).
//
// Filters belong to threads. Without TSYNC the caller locks its goroutine to
// the OS thread that will execve the container's process
// (runtime.LockOSThread), installs, and execs from that thread.
//
// It returns the user-notification listener fd (close-on-exec) when
// prog.Notify, else -1. The caller passes it to the profile's listenerPath.
func Install(prog *Program) (int, error) {
	if prog == nil || len(prog.Instructions) == 0 {
		return -1, errors.New("seccomp: install: empty program")
	}
	filter := make([]unix.SockFilter, len(prog.Instructions))
	for i, ins := range prog.Instructions {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, seccompSetModeFilter, uintptr(prog.Flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp(SET_MODE_FILTER, flags %#x): %w", prog.Flags, errno)
	}
	if prog.Flags&FlagTsync != 0 && prog.Flags&FlagTsyncESRCH == 0 && r != 0 {
		// TSYNC without ESRCH reports the id of a thread it could not
		// synchronise (one with a diverging filter).
		return -1, fmt.Errorf("seccomp: TSYNC failed on thread %d", r)
	}
	if prog.Notify {
		return int(r), nil
	}
	return -1, nil
}
