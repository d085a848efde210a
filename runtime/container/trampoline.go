package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/runtime/procfs"
)

// Entering an existing user or time namespace (create with
// linux.namespaces[].path, or exec into a container that has its own), and
// a new user namespace together with a joined time namespace.
//
// setns(CLONE_NEWUSER) and setns(CLONE_NEWTIME) require a single-threaded
// caller (the kernel's userns_install and timens_install), which no Go
// process is, and the child that os/exec forks shares the parent's memory
// (CLONE_VM) until it execs, which counts as threaded too. runc answers with
// a C constructor that runs before the Go runtime starts (nsexec); we answer
// without cgo: a raw fork(2) (clone without CLONE_VM) whose child runs only
// the nosplit functions below, which make raw system calls on data the
// parent prepared (integers and pointers to NUL-terminated bytes), never
// allocate, never grow the stack and never enter the Go runtime. The child
// is a copy of the parent's memory with a single thread; it must not touch
// the runtime's state, whose locks other (absent) threads may hold, and
// signals stay blocked until its execve so that no Go signal handler runs
// in it.
//
// Two processes, runc's stage 1 and 2:
//
//   - the first child joins the namespaces in the order below, creates the
//     new ones the spec asks for (unshare) so that they belong to the joined
//     user namespace, writes the offsets of a new time namespace, and forks
//     the second with CLONE_PARENT, so that the runtime is its parent (it
//     waits for it as for any init), then reports its pid and exits;
//   - the second, the first process of any new pid namespace, puts its fds
//     in place and execveat(2)s the runtime binary (by fd: a joined mount
//     namespace has its own /proc, or none) as init.
//
// Order of the joins, and why:
//
//  1. setgroups(0): the supplementary groups of the runtime (host root's)
//     are dropped while we still hold CAP_SETGID over the host: a joined
//     user namespace may deny setgroups (/proc/<pid>/setgroups "deny"),
//     and they must not follow init in. (An unprivileged runtime cannot,
//     and keeps its own, as runc's rootless mode does.) The offsets file
//     of a new time namespace is opened here too, as host root: the kernel
//     checks the opener's CAP_SYS_TIME, and a non-dumpable process's
//     /proc files belong to host root, which the joined root is not;
//  2. every namespace but the user namespace (time included, mount last):
//     setns needs CAP_SYS_ADMIN over the namespace's owner *and* in the
//     caller's own user namespace; as host root we have both, whoever owns
//     it, which a namespace owned by the host (the host's network, say)
//     needs;
//  3. the user namespace: the kernel gives the full capability set in it
//     (a new one is unshared here, after the joins that need the host's
//     privileges, and the child waits while the parent writes its id maps,
//     as for Go's SysProcAttr.UidMappings);
//     then gid and uid 0 inside it (gid first, the usual order: a uid
//     change can cost capabilities), so that init execs as that root and
//     keeps them (host uid 0 is not root there);
//  4. the joins that failed with EPERM in 2, again: an unprivileged runtime
//     (rootless) has no capability over the host and can only join
//     namespaces owned by the user namespace once it is in it (runc retries
//     the same way);
//  5. unshare of the new namespaces: after 3, so that the joined user
//     namespace owns them and init, its root, may mount, set the hostname,
//     and so on; a new pid namespace applies to children, hence the second
//     process. A new time namespace also applies to children only, and its
//     offsets can be written only before any process is in it: unshare,
//     write /proc/self/timens_offsets, then fork.
//
// exec takes the same path with joins only (the container's namespaces);
// it leaves the mount namespace to init when the runtime binary is dynamic,
// whose ELF interpreter must come from the host (see Runtime.Exec).
//
// While it works, the first child is host root with capabilities in the
// container's user namespace, in the host's mount namespace. It makes
// itself non-dumpable first thing, so that no process of the container
// (even one with CAP_SYS_PTRACE there) can ptrace it or open its
// /proc/<pid> files: its mm belongs to the host's user namespace, whose
// CAP_SYS_PTRACE that needs. The second child inherits that until its
// execve, after which initproc.Main clears it again.

// trampoline is what the children need, prepared by the parent. Only
// integers and uintptrs to memory the parent keeps alive: the children
// read it, never write a pointer (which could need a GC write barrier).
type trampoline struct {
	joins    []rawJoin // in the order of step 2
	userFD   int       // -1: no user namespace to join
	unshare  uintptr   // new namespaces (step 5)
	setsid   bool
	newTime  bool
	procFD   int     // a procfs root, for the time offsets
	offPath  uintptr // "self/timens_offsets\0"
	offBuf   uintptr
	offLen   uintptr
	offFD    uintptr // the first child's, opened by it
	fds      []int   // fds[i] becomes fd i in init; all are >= len(fds)
	exeFD    int
	argv     uintptr // **byte
	envv     uintptr // **byte
	emptyStr uintptr // "\0" for execveat
	report   int     // write end of the report pipe (close-on-exec)
	sigmask  [2]uint32
	oldmask  [2]uint32
	msg      [3]int64 // {kind, step, value}: the report being written
	retry    []bool
	newUser  bool         // unshare a user namespace after the joins (step 3)
	resume   int          // read end: the parent has written its id maps
	resBuf   [8]byte      // what resume delivers
	nofile   *unix.Rlimit // init's RLIMIT_NOFILE, if not ours (childNofile)
}

type rawJoin struct {
	fd   int
	flag uintptr
}

// Report kinds and steps (trampoline.msg).
const (
	msgPid = 1
	msgErr = 2
	// msgMaps: the first child has unshared its user namespace and
	// waits on resume for the parent to write the id maps.
	msgMaps = 3

	stepDumpable = -1
	stepGroups   = -2
	stepUser     = -3
	stepGid      = -4
	stepUid      = -5
	stepUnshare  = -6
	stepOffsets  = -7
	stepFork     = -8
	stepSetsid   = -9
	stepDup      = -10
	stepExec     = -11
	stepNewUser  = -12
	stepMaps     = -13
	stepRlimit   = -14
	// steps >= 0 are joins[step]
)

var stepNames = map[int64]string{
	stepDumpable: "prctl(PR_SET_DUMPABLE)", stepGroups: "setgroups",
	stepUser: "join user namespace", stepGid: "setresgid(0) in the user namespace",
	stepUid: "setresuid(0) in the user namespace", stepUnshare: "unshare new namespaces",
	stepOffsets: "write time namespace offsets", stepFork: "fork init", stepSetsid: "setsid",
	stepDup: "dup3", stepExec: "execveat init",
	stepNewUser: "unshare user namespace", stepMaps: "wait for the id maps",
	stepRlimit: "setrlimit(RLIMIT_NOFILE)",
}

// needsTrampoline reports whether p joins a user or time namespace.
func (p *nsPlan) needsTrampoline() bool {
	for _, j := range p.join {
		if j.typ == specs.UserNamespace || j.typ == specs.TimeNamespace {
			return true
		}
	}
	return false
}

// startTrampoline starts cmd (init's command from initCmd) through the two
// raw children and sets cmd.Process to init. cmd.SysProcAttr may only ask
// for Setsid: new namespaces come from p, user ids from the joined user
// namespace.
func (p *nsPlan) startTrampoline(cmd *exec.Cmd) (err error) {
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	keep := func(f *os.File) { closers = append(closers, func() { f.Close() }) }
	t := &trampoline{userFD: -1, procFD: -1, resume: -1, unshare: p.cloneflags &^ unix.CLONE_NEWUSER}
	t.newUser = p.cloneflags&unix.CLONE_NEWUSER != 0
	if a := cmd.SysProcAttr; a != nil {
		// Honoured here: Setsid; Cloneflags and the id maps come from p;
		// the credentials are the user namespace's root. Anything else
		// would be dropped silently: refuse it.
		if a.Setpgid || a.Setctty || a.Foreground || a.Noctty || a.Pdeathsig != 0 ||
			a.UseCgroupFD || a.PidFD != nil || a.Chroot != "" || len(a.AmbientCaps) > 0 || a.Unshareflags != 0 ||
			// CLONE_PARENT (CreateOptions.CloneParent) would make the
			// first child the caller's parent's, which then reaps it:
			// not built, so not dropped either.
			a.Cloneflags&unix.CLONE_PARENT != 0 {
			return fmt.Errorf("trampoline: unsupported SysProcAttr %+v: %w", *a, ErrUnsupported)
		}
		t.setsid = a.Setsid
	}
	// Step 2 order: p.join has the mount namespace last.
	for _, j := range p.join {
		f, err := os.Open(j.path)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", j.typ, err)
		}
		keep(f)
		if j.typ == specs.UserNamespace {
			t.userFD = int(f.Fd())
			continue
		}
		t.joins = append(t.joins, rawJoin{int(f.Fd()), uintptr(j.flag)})
	}
	t.retry = make([]bool, len(t.joins))
	if p.newTime && len(p.timeOffsets) > 0 {
		h, err := procfs.Open()
		if err != nil {
			return err
		}
		closers = append(closers, func() { h.Close() })
		t.procFD = h.Fd()
		off := []byte(formatOffsets(p.timeOffsets))
		// self, not thread-self: timens_offsets is a per-process file
		// (and the first child has one thread).
		path := cstr("self/timens_offsets")
		t.offPath, t.offBuf, t.offLen = addr(path), addr(off), uintptr(len(off))
		defer runtime.KeepAlive(path)
		defer runtime.KeepAlive(off)
	}
	if p.newTime {
		t.newTime = true
	}
	ea, err := prepareExec(cmd)
	if err != nil {
		return err
	}
	closers = append(closers, ea.close)
	t.fds, t.exeFD, t.argv, t.envv, t.emptyStr = ea.fds, ea.exeFD, ea.argv, ea.envv, ea.emptyStr
	n := len(ea.fds)
	if lim, set, _ := childNofile(); set {
		t.nofile = &lim
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("trampoline pipe: %w", err)
	}
	rd := os.NewFile(uintptr(pipe[0]), "trampoline")
	defer rd.Close()
	// Not among the closers: closed right after the fork, so that the
	// reads below see EOF once the children are done with it.
	t.report, err = unix.FcntlInt(uintptr(pipe[1]), unix.F_DUPFD_CLOEXEC, n)
	unix.Close(pipe[1])
	if err != nil {
		return fmt.Errorf("trampoline pipe: %w", err)
	}
	var resumeW *os.File
	if t.newUser {
		var rp [2]int
		if err := unix.Pipe2(rp[:], unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("trampoline pipe: %w", err)
		}
		resumeW = os.NewFile(uintptr(rp[1]), "trampoline-resume")
		defer resumeW.Close()
		// Not among the closers either: the parent's copy is closed
		// right after the fork.
		t.resume, err = unix.FcntlInt(uintptr(rp[0]), unix.F_DUPFD_CLOEXEC, n)
		unix.Close(rp[0])
		if err != nil {
			return fmt.Errorf("trampoline pipe: %w", err)
		}
	}
	t.sigmask = [2]uint32{^uint32(0), ^uint32(0)}

	// ForkLock, as os/exec takes it: no fd another goroutine is creating
	// without close-on-exec yet leaks into the children.
	syscall.ForkLock.Lock()
	pid, errno := t.fork()
	syscall.ForkLock.Unlock()
	unix.Close(t.report)
	runtime.KeepAlive(t)
	if errno != 0 {
		return fmt.Errorf("fork: %w", errno)
	}
	if t.resume >= 0 {
		unix.Close(t.resume) // the children's copies remain
	}
	initPid, cerr := readReports(rd, p, func() error {
		// Written, as for Go's SysProcAttr.UidMappings, by the parent:
		// only a process privileged over the parent user namespace may
		// map more than its own id.
		err := p.writeIDMaps(int(pid))
		if err == nil {
			_, err = resumeW.Write([]byte{1})
		}
		resumeW.Close() // on error, EOF fails the child
		return err
	})
	// The first child exits right after its report (or failure); reap it.
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(int(pid), &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	if cerr != nil {
		if initPid > 0 {
			// Failed between its fork and its execve: it has exited.
			unix.Kill(initPid, unix.SIGKILL)
			unix.Wait4(initPid, &ws, 0, nil)
		}
		return cerr
	}
	if initPid <= 0 {
		return fmt.Errorf("trampoline exited (%v) without starting init", describeWait(ws))
	}
	proc, err := os.FindProcess(initPid)
	if err != nil {
		return fmt.Errorf("init pid %d: %w", initPid, err)
	}
	cmd.Process = proc
	return nil
}

// readReports reads the children's reports until the pipe's last write end
// closes: the first child's at its exit, the second's at its execve.
func readReports(rd *os.File, p *nsPlan, onMaps func() error) (int, error) {
	initPid := 0
	var firstErr error
	var buf [24]byte
	for {
		if _, err := io.ReadFull(rd, buf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return initPid, firstErr
			}
			return initPid, fmt.Errorf("trampoline report: %w", err)
		}
		m := *(*[3]int64)(unsafe.Pointer(&buf))
		switch m[0] {
		case msgMaps:
			if err := onMaps(); err != nil && firstErr == nil {
				firstErr = fmt.Errorf("user namespace id maps: %w", err)
			}
		case msgPid:
			initPid = int(m[2])
		case msgErr:
			if firstErr != nil {
				break
			}
			firstErr = fmt.Errorf("%s: %w", p.stepName(m[1]), syscall.Errno(m[2]))
			if (m[1] == stepGid || m[1] == stepUid) && syscall.Errno(m[2]) == syscall.EINVAL {
				firstErr = fmt.Errorf("%w (the joined user namespace must map uid and gid 0): %w", firstErr, ErrInvalid)
			}
		}
	}
}

// stepName names a trampoline step for an error.
func (p *nsPlan) stepName(step int64) string {
	if step >= 0 {
		// joins are p.join without the user namespace, in order.
		i := int64(0)
		for _, j := range p.join {
			if j.typ == specs.UserNamespace {
				continue
			}
			if i == step {
				return fmt.Sprintf("join %s namespace %s", j.typ, j.path)
			}
			i++
		}
	}
	if step == stepUser {
		for _, j := range p.join {
			if j.typ == specs.UserNamespace {
				return fmt.Sprintf("join user namespace %s", j.path)
			}
		}
	}
	if s, ok := stepNames[step]; ok {
		return s
	}
	return fmt.Sprintf("trampoline step %d", step)
}

func describeWait(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return fmt.Sprintf("killed by %v", ws.Signal())
	}
	return fmt.Sprintf("status %d", ws.ExitStatus())
}

func cstr(s string) []byte { return append([]byte(s), 0) }

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

func addr2(p []*byte) uintptr { return uintptr(unsafe.Pointer(&p[0])) }

// The functions below run in the children (and fork in the parent too):
// nosplit, raw system calls only, see the top of this file.

// fork blocks every signal on this thread, forks, and restores the mask
// in the parent. The child never returns from here.
//
//go:nosplit
//go:norace
func (t *trampoline) fork() (uintptr, syscall.Errno) {
	// The three system calls run on one thread: nothing here lets the
	// scheduler move us (nosplit, no calls into the runtime, and no
	// preemption signal once the first has blocked them).
	_, _, e := syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.sigmask)), uintptr(unsafe.Pointer(&t.oldmask)), 8, 0, 0)
	if e != 0 {
		return 0, e
	}
	pid, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e == 0 && pid == 0 {
		t.stage1()
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.oldmask)), 0, 8, 0, 0)
	return pid, e
}

//go:nosplit
//go:norace
func (t *trampoline) fail(step int64, e syscall.Errno) {
	t.msg[0], t.msg[1], t.msg[2] = msgErr, step, int64(e)
	syscall.RawSyscall6(unix.SYS_WRITE, uintptr(t.report), uintptr(unsafe.Pointer(&t.msg)), 24, 0, 0, 0)
	syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 127, 0, 0, 0, 0, 0)
}

// stage1 is the first child: joins, unshares, forks init (see the order at
// the top of this file).
//
//go:nosplit
//go:norace
func (t *trampoline) stage1() {
	if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0, 0, 0, 0); e != 0 {
		t.fail(stepDumpable, e)
	}
	if t.offLen > 0 {
		// Opened now, as host root: the kernel checks CAP_SYS_TIME over
		// the time namespace's owner with the opener's credentials, and
		// once we are the joined namespace's root the file (ours, but
		// non-dumpable, so owned by host root) is not even writable.
		fd, _, e := syscall.RawSyscall6(unix.SYS_OPENAT, uintptr(t.procFD), t.offPath, unix.O_WRONLY|unix.O_CLOEXEC, 0, 0, 0)
		if e != 0 {
			t.fail(stepOffsets, e)
		}
		t.offFD = fd
	}
	if t.userFD >= 0 || t.newUser {
		if _, _, e := syscall.RawSyscall6(unix.SYS_SETGROUPS, 0, 0, 0, 0, 0, 0); e != 0 && e != unix.EPERM {
			t.fail(stepGroups, e)
		}
	}
	for i := 0; i < len(t.joins); i++ {
		_, _, e := syscall.RawSyscall6(unix.SYS_SETNS, uintptr(t.joins[i].fd), t.joins[i].flag, 0, 0, 0, 0)
		if e == unix.EPERM && t.userFD >= 0 {
			t.retry[i] = true
		} else if e != 0 {
			t.fail(int64(i), e)
		}
	}
	if t.userFD >= 0 {
		if _, _, e := syscall.RawSyscall6(unix.SYS_SETNS, uintptr(t.userFD), unix.CLONE_NEWUSER, 0, 0, 0, 0); e != 0 {
			t.fail(stepUser, e)
		}
		if _, _, e := syscall.RawSyscall6(unix.SYS_SETRESGID, 0, 0, 0, 0, 0, 0); e != 0 {
			t.fail(stepGid, e)
		}
		if _, _, e := syscall.RawSyscall6(unix.SYS_SETRESUID, 0, 0, 0, 0, 0, 0); e != 0 {
			t.fail(stepUid, e)
		}
		for i := 0; i < len(t.joins); i++ {
			if !t.retry[i] {
				continue
			}
			if _, _, e := syscall.RawSyscall6(unix.SYS_SETNS, uintptr(t.joins[i].fd), t.joins[i].flag, 0, 0, 0, 0); e != 0 {
				t.fail(int64(i), e)
			}
		}
	}
	if t.newUser {
		// After the joins, which need the host's privileges (a time
		// namespace the host owns, say); the other new namespaces come
		// after it, which then owns them.
		if _, _, e := syscall.RawSyscall6(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0, 0, 0, 0); e != 0 {
			t.fail(stepNewUser, e)
		}
		t.msg[0], t.msg[1], t.msg[2] = msgMaps, 0, 0
		syscall.RawSyscall6(unix.SYS_WRITE, uintptr(t.report), uintptr(unsafe.Pointer(&t.msg)), 24, 0, 0, 0)
		n, _, e := syscall.RawSyscall6(unix.SYS_READ, uintptr(t.resume), uintptr(unsafe.Pointer(&t.resBuf)), 1, 0, 0, 0)
		if n != 1 {
			if e == 0 {
				e = unix.EIO
			}
			t.fail(stepMaps, e)
		}
		if _, _, e := syscall.RawSyscall6(unix.SYS_SETRESGID, 0, 0, 0, 0, 0, 0); e != 0 {
			t.fail(stepGid, e)
		}
		if _, _, e := syscall.RawSyscall6(unix.SYS_SETRESUID, 0, 0, 0, 0, 0, 0); e != 0 {
			t.fail(stepUid, e)
		}
	}
	flags := t.unshare
	if t.newTime {
		flags |= unix.CLONE_NEWTIME
	}
	if flags != 0 {
		if _, _, e := syscall.RawSyscall6(unix.SYS_UNSHARE, flags, 0, 0, 0, 0, 0); e != 0 {
			t.fail(stepUnshare, e)
		}
	}
	if t.offLen > 0 {
		if _, _, e := syscall.RawSyscall6(unix.SYS_WRITE, t.offFD, t.offBuf, t.offLen, 0, 0, 0); e != 0 {
			t.fail(stepOffsets, e)
		}
		syscall.RawSyscall6(unix.SYS_CLOSE, t.offFD, 0, 0, 0, 0, 0)
	}
	// CLONE_PARENT: init is the runtime's child, which waits for it.
	// Its exit signal is ours, SIGCHLD.
	pid, _, e := syscall.RawSyscall6(unix.SYS_CLONE, unix.CLONE_PARENT|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		t.fail(stepFork, e)
	}
	if pid == 0 {
		t.stage2()
	}
	t.msg[0], t.msg[1], t.msg[2] = msgPid, 0, int64(pid)
	syscall.RawSyscall6(unix.SYS_WRITE, uintptr(t.report), uintptr(unsafe.Pointer(&t.msg)), 24, 0, 0, 0)
	syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 0, 0, 0, 0, 0, 0)
}

// stage2 becomes init: session, fds, signal mask, execveat.
//
//go:nosplit
//go:norace
func (t *trampoline) stage2() {
	if t.setsid {
		if _, _, e := syscall.RawSyscall6(unix.SYS_SETSID, 0, 0, 0, 0, 0, 0); e != 0 {
			t.fail(stepSetsid, e)
		}
	}
	for i := 0; i < len(t.fds); i++ {
		if _, _, e := syscall.RawSyscall6(unix.SYS_DUP3, uintptr(t.fds[i]), uintptr(i), 0, 0, 0, 0); e != 0 {
			t.fail(stepDup, e)
		}
	}
	if t.nofile != nil {
		if _, _, e := syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(t.nofile)), 0, 0, 0); e != 0 {
			t.fail(stepRlimit, e)
		}
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.oldmask)), 0, 8, 0, 0)
	_, _, e := syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(t.exeFD), t.emptyStr, t.argv, t.envv, unix.AT_EMPTY_PATH, 0)
	// Blocked again: the failure report must not race a signal handler.
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.sigmask)), 0, 8, 0, 0)
	t.fail(stepExec, e)
}

// writeIDMaps writes the spec's id maps for the user namespace of pid. An
// unprivileged runtime may map only its own ids, and gids only once
// setgroups is denied.
func (p *nsPlan) writeIDMaps(pid int) error {
	dir := fmt.Sprintf("/proc/%d/", pid)
	if os.Geteuid() != 0 {
		if err := os.WriteFile(dir+"setgroups", []byte("deny"), 0); err != nil {
			return err
		}
	}
	format := func(m []specs.LinuxIDMapping) []byte {
		var b []byte
		for _, e := range m {
			b = fmt.Appendf(b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
		}
		return b
	}
	if err := os.WriteFile(dir+"uid_map", format(p.uidMaps), 0); err != nil {
		return err
	}
	return os.WriteFile(dir+"gid_map", format(p.gidMaps), 0)
}
