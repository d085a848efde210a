package container

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// execArgs is what a raw child (trampoline.go, vfork.go) needs to become
// init: its fds, the binary by fd, argv and envp, as integers and pointers
// to memory kept alive here until close.
type execArgs struct {
	// fds[i] becomes fd i in init; each is >= len(fds), so that the
	// child's dup3 onto 0..n-1 never overwrites one it still needs.
	fds      []int
	exeFD    int // O_PATH, also >= len(fds)
	argv     uintptr
	envv     uintptr
	emptyStr uintptr // "\0" for execveat
	keep     [3]any
	closers  []func()
}

// prepareExec builds the execArgs of cmd (init's command from initCmd):
// init's fds 0..n-1 are stdio (/dev/null for a nil one, as os/exec does)
// and ExtraFiles; every fd made here is close-on-exec.
func prepareExec(cmd *exec.Cmd) (a *execArgs, err error) {
	a = &execArgs{exeFD: -1}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	files := make([]*os.File, 3)
	if f, ok := cmd.Stdin.(*os.File); ok {
		files[0] = f
	}
	if f, ok := cmd.Stdout.(*os.File); ok {
		files[1] = f
	}
	if f, ok := cmd.Stderr.(*os.File); ok {
		files[2] = f
	}
	files = append(files, cmd.ExtraFiles...)
	n := len(files)
	for i, f := range files {
		if f == nil {
			if f, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
				return nil, fmt.Errorf("init stdio: %w", err)
			}
			a.closers = append(a.closers, func() { f.Close() })
		}
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, n)
		if err != nil {
			return nil, fmt.Errorf("init fd %d: %w", i, err)
		}
		a.closers = append(a.closers, func() { unix.Close(fd) })
		a.fds = append(a.fds, fd)
	}
	// What the child uses after its dup3s must be above n too.
	exe, err := unix.Open(cmd.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("runtime binary: %w", err)
	}
	a.exeFD, err = unix.FcntlInt(uintptr(exe), unix.F_DUPFD_CLOEXEC, n)
	unix.Close(exe)
	if err != nil {
		return nil, fmt.Errorf("runtime binary: %w", err)
	}
	exeFD := a.exeFD
	a.closers = append(a.closers, func() { unix.Close(exeFD) })
	argv, err := syscall.SlicePtrFromStrings(cmd.Args)
	if err != nil {
		return nil, fmt.Errorf("init args: %w", err)
	}
	envv, err := syscall.SlicePtrFromStrings(cmd.Env)
	if err != nil {
		return nil, fmt.Errorf("init env: %w", err)
	}
	empty := cstr("")
	a.argv, a.envv, a.emptyStr = addr2(argv), addr2(envv), addr(empty)
	a.keep = [3]any{argv, envv, empty}
	return a, nil
}

// close releases the fds and, from here on, the memory the child read.
func (a *execArgs) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
	runtime.KeepAlive(a.keep)
}
