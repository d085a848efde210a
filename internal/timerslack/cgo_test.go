package timerslack

import "syscall"

// cgoDisabled reports whether AllThreadsSyscall works in this binary.
func cgoDisabled() bool {
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0)
	return e != syscall.ENOTSUP
}
