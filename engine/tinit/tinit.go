// Package tinit is the minimal init that --init puts in front of a
// container's command (the estiba binary itself, bind-mounted read-only as
// /sbin/estiba-init): it forwards signals to the command and reaps every
// zombie, so a command that never reaps cannot fill the pid table.
package tinit

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"

	"golang.org/x/sys/unix"
)

// Run execs args (after an optional "--") as a child and returns its exit
// status once it ends, reaping all other children meanwhile.
func Run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "estiba-init: no command")
		return 127
	}
	sigs := make(chan os.Signal, 32)
	// Every catchable signal; SIGCHLD drives the reaping.
	signal.Notify(sigs)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Same session and foreground group as us: a tty stays usable.
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "estiba-init: %v\n", err)
		return 127
	}
	child := cmd.Process.Pid
	for sig := range sigs {
		if sig != unix.SIGCHLD {
			unix.Kill(child, sig.(unix.Signal))
			continue
		}
		if code, done := reap(child); done {
			return code
		}
	}
	return 0
}

// reap collects every exited child; it reports the main child's status
// when it is among them.
func reap(child int) (int, bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid == child {
			if ws.Signaled() {
				return 128 + int(ws.Signal()), true
			}
			return ws.ExitStatus(), true
		}
	}
}
