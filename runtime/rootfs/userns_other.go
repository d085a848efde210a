//go:build !amd64

package rootfs

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// newUserNSProc starts a process in a new user namespace, without maps, and
// returns its pid and a pidfd: a copy of the calling binary, stopped by
// ptrace at its exec, before its first instruction (amd64 has a cheaper
// way, see userns_amd64.go).
func newUserNSProc() (pid, pidfd int, err error) {
	fd := -1
	pid, err = syscall.ForkExec("/proc/self/exe", []string{"estiba-userns-holder"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{
			Ptrace:     true, // stops at exec: nothing of the copy ever runs
			Cloneflags: unix.CLONE_NEWUSER,
			Pdeathsig:  syscall.SIGKILL,
			PidFD:      &fd,
		},
	})
	if err != nil {
		return 0, -1, fmt.Errorf("fork: %w", err)
	}
	return pid, fd, nil
}
