// Package timerslack widens the timer slack of estiba's own processes.
//
// Why: while any goroutine runs, the Go runtime's sysmon thread sleeps in
// steps that start at 20 µs, and each wakeup is a timer interrupt and two
// context switches. On a virtual machine those are expensive (measured on
// a PVM guest: a 20 µs nanosleep takes 166 µs; `estiba-runtime run` of
// `true` made ~180 nanosleeps and ~360 context switches). The timer slack
// (prctl PR_SET_TIMERSLACK) lets the kernel defer such timers to coalesce
// them: at 500 µs the same run makes ~55 nanosleeps and ~185 switches.
// Nothing of estiba waits on a timer finer than that. The slack is per
// thread, inherited by threads and processes created after, so the
// container's init must give the container's process the slack it would
// have had (Restore): containers never see ours.
package timerslack

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Wide is the slack, in nanoseconds, of estiba's processes.
const Wide = 500_000

// Widen sets the slack of every thread of this process to Wide (threads
// created later inherit it from their creator), and returns the calling
// thread's slack before, for Restore. It does nothing where Go cannot
// reach every thread (a cgo binary) or where the slack is already wider.
func Widen() (prev uint64) {
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || cur <= 0 {
		return 0
	}
	if cur < Wide {
		syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_TIMERSLACK, Wide, 0)
	}
	return uint64(cur)
}

// Restore sets the calling thread's slack to ns, if not 0. Call it on a
// locked thread that is about to execve, which keeps the slack.
func Restore(ns uint64) error {
	if ns == 0 {
		return nil
	}
	return unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(ns), 0, 0, 0)
}
