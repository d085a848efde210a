package container

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/runtime/rootfs"
)

// A new user namespace without a copy of the runtime's memory.
//
// Go's SysProcAttr makes a new user namespace with a full fork (clone
// without CLONE_VM): the child waits in it while the parent writes its id
// maps, and a vfork child would wait for a parent that is suspended until
// it execs. A full fork copies the forker's page tables and write-protects
// its memory, then faults the pages both touch: ~18 ms of CPU on a VM with
// shadow paging, the largest item of a container's start in the engine.
//
// Here the user namespace exists, maps written, before any child:
// rootfs.NewUserNS makes it with a register-only CLONE_VM child (nothing
// copied). init is then started by two CLONE_VM|CLONE_VFORK children that
// run only the nosplit functions below on our stack while our thread is
// suspended (the model of Go's forkAndExecInChild1 and of trampoline.go):
// raw system calls on data prepared here, integers and pointers into
// memory kept alive, no allocation, no stack growth, no call into the Go
// runtime, every signal blocked. They share our memory: what they report
// (a failed step and its errno, init's pid) they write into vforkSpawn,
// which we read once they are gone; they write no pointer (no write
// barrier could run).
//
//   - stage 1, our child: setgroups(0) as host root (the runtime's groups
//     must not follow init in); the joins of existing namespaces (never a
//     user or time namespace: see vforkable), as host root; setns into the
//     user namespace, which the kernel allows a process that shares its
//     memory (userns_install checks the thread group and that fs_struct is
//     not shared, which is why CLONE_FS is never passed) and which gives it
//     the full capability set there; unshare of the new namespaces, so
//     that the user namespace owns them (a new pid namespace applies to
//     children, hence stage 2); then it vforks stage 2, writes its pid, and
//     exits;
//   - stage 2, the first process of the new pid namespace, is init: gid
//     and uid 0 in the user namespace (init execs as that root, or execve
//     would drop its capabilities), a new session, its fds in place, the
//     caught signals back to their default, the RLIMIT_NOFILE of Go's
//     children (childNofile), execveat(2) of the runtime binary by fd.
//
// init's parent: with CLONE_PARENT, stage 2 is our child, and we wait for
// it as for any init. With CreateOptions.CloneParent init must be our
// parent's child instead, and no clone flag reaches a grandparent (stage 1
// made with CLONE_PARENT would be a zombie of our parent that nobody
// reaps): stage 2 is stage 1's child, orphaned when stage 1 exits, and the
// kernel hands orphans to the nearest child subreaper (PR_SET_CHILD_SUBREAPER)
// among the ancestors, which the engine's monitor is (the usual way a shim
// gets its containers' inits). startVfork checks that init's parent is
// ours indeed.
//
// Both children share our memory, with every capability in the container's
// user namespace: whoever could ptrace one or open its /proc/<pid>/mem
// would own the runtime. Stage 2, once the container's root, passes
// ptrace's uid check for any process with that host uid (another
// container's, with the same mapping); what stops those is a non-dumpable
// mm, whose ptrace needs CAP_SYS_PTRACE over the host. So the whole runtime
// is non-dumpable (dumpable is per mm) from before the first child until
// no child shares our memory any more (exec'd or reaped), under
// syscall.ForkLock, which also orders us with os/exec's forks (no fd
// another goroutine is creating leaks into init).

// vforkSpawn is what the children need, prepared by the parent, and what
// they report.
type vforkSpawn struct {
	joins    []rawJoin // existing namespaces, mount last
	userFD   int
	unshare  uintptr // new namespaces but the user namespace
	setsid   bool
	flags2   uintptr // clone flags of stage 2
	orphan   bool    // stage 2 is not CLONE_PARENT (see above)
	fds      []int   // fds[i] becomes fd i in init; all are >= len(fds)
	exeFD    int
	argv     uintptr // **byte
	envv     uintptr // **byte
	emptyStr uintptr // "\0" for execveat
	sigmask  [2]uint32
	oldmask  [2]uint32
	dfl      kSigaction   // SIG_DFL
	old      kSigaction   // stage 2's scratch
	nofile   *unix.Rlimit // init's RLIMIT_NOFILE, if not ours
	// clone3's arguments for stage 1 when it is born in a cgroup2 cgroup
	// (CLONE_INTO_CGROUP): init, its child, is then there too.
	clone3 *cloneArgs

	// Written by the children, read once they are gone.
	initPid int64
	step    int64
	errno   int64
}

// cloneArgs is the kernel's struct clone_args, up to its cgroup field
// (CLONE_ARGS_SIZE_VER2).
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal uint64
	stack, stackSize, tls, setTID, setTIDSize     uint64
	cgroup                                        uint64
}

// kSigaction is the kernel's struct sigaction on Linux (rt_sigaction).
type kSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// vforkable reports whether startVfork can start init: a new user
// namespace, made by a privileged runtime (a rootless one must deny
// setgroups and may map only its own ids: Go's fork does that), without a
// time namespace (joining one, or writing a new one's offsets, needs a
// single-threaded mm, and the kernel refuses CLONE_VM children across time
// namespaces) or a user namespace to join (the trampoline's).
//
// It also needs to know the RLIMIT_NOFILE init gets from Go's fork (see
// childNofile).
func (p *nsPlan) vforkable() bool {
	if !haveVfork || p.cloneflags&unix.CLONE_NEWUSER == 0 || p.newTime || p.needsTrampoline() || os.Geteuid() != 0 {
		return false
	}
	_, _, known := childNofile()
	return known
}

// startVfork starts cmd (init's command from initCmd) in a new session and
// the plan's namespaces, as the caller's child or, with cloneParent, as
// the caller's parent's (see the top of this file), and sets cmd.Process.
//
// cgroupFD, if not -1, is a cgroup2 directory that init is born in
// (cgroups.Entry).
func (p *nsPlan) startVfork(cmd *exec.Cmd, cloneParent bool, cgroupFD int) error {
	ufd, err := rootfs.NewUserNS(p.uidMaps, p.gidMaps)
	if err != nil {
		return err
	}
	defer ufd.Close()
	ea, err := prepareExec(cmd)
	if err != nil {
		return err
	}
	defer ea.close()
	t := &vforkSpawn{
		userFD: int(ufd.Fd()), unshare: p.cloneflags &^ unix.CLONE_NEWUSER, setsid: true,
		fds: ea.fds, exeFD: ea.exeFD, argv: ea.argv, envv: ea.envv, emptyStr: ea.emptyStr,
		sigmask: [2]uint32{^uint32(0), ^uint32(0)},
	}
	// Open every path first: after a mount namespace switch they would
	// resolve elsewhere (p.join has the mount namespace last).
	for _, j := range p.join {
		f, err := os.Open(j.path)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", j.typ, err)
		}
		defer f.Close()
		t.joins = append(t.joins, rawJoin{int(f.Fd()), uintptr(j.flag)})
	}
	if lim, set, _ := childNofile(); set {
		t.nofile = &lim
	}
	if cgroupFD >= 0 {
		t.clone3 = &cloneArgs{flags: unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_INTO_CGROUP, exitSignal: uint64(unix.SIGCHLD), cgroup: uint64(cgroupFD)}
	}
	t.flags2 = unix.CLONE_VM | unix.CLONE_VFORK | uintptr(unix.SIGCHLD)
	if cloneParent {
		t.orphan = true
	} else {
		t.flags2 |= unix.CLONE_PARENT
	}
	ws, err := t.run()
	if err != nil {
		return err
	}
	if t.errno != 0 {
		err := fmt.Errorf("%s: %w", p.stepName(t.step), syscall.Errno(t.errno))
		if (t.step == stepGid || t.step == stepUid) && syscall.Errno(t.errno) == syscall.EINVAL {
			err = fmt.Errorf("%w (the user namespace must map uid and gid 0): %w", err, ErrInvalid)
		}
		return err
	}
	if t.initPid <= 0 {
		return fmt.Errorf("init's first stage exited (%v) without starting init", describeWait(ws))
	}
	pid := int(t.initPid)
	if cloneParent {
		if ppid, err := procPPid(pid); err != nil || ppid != os.Getppid() {
			unix.Kill(pid, unix.SIGKILL)
			if err != nil {
				return fmt.Errorf("init pid %d: %w", pid, err)
			}
			return fmt.Errorf("init went to pid %d, not to our parent %d: with a new user namespace, CloneParent needs a parent that is a child subreaper", ppid, os.Getppid())
		}
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("init pid %d: %w", pid, err)
	}
	cmd.Process = proc
	return nil
}

// run starts the children and returns once none shares our memory: stage
// 1 reaped, init exec'd or reaped. It returns stage 1's wait status.
func (t *vforkSpawn) run() (ws unix.WaitStatus, err error) {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	dumpable, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return ws, fmt.Errorf("prctl(PR_GET_DUMPABLE): %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return ws, fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	// Also undoes what the children's credential changes did to it (the
	// kernel sets an mm's dumpable to fs.suid_dumpable then).
	defer unix.Prctl(unix.PR_SET_DUMPABLE, uintptr(dumpable), 0, 0, 0)
	pid, errno := t.spawn()
	runtime.KeepAlive(t)
	if errno != 0 {
		return ws, fmt.Errorf("vfork: %w", errno)
	}
	for {
		if _, err := unix.Wait4(int(pid), &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	if t.errno != 0 && t.initPid > 0 {
		// init (our child: the orphan's stage 1 reaps its own) failed
		// before its execve and has exited.
		unix.Kill(int(t.initPid), unix.SIGKILL)
		unix.Wait4(int(t.initPid), nil, 0, nil)
	}
	return ws, nil
}

// childNofile is the RLIMIT_NOFILE os/exec gives the children it forks,
// if it is not ours (set). Go raises its own soft limit at start, to the
// hard limit less one (its mark), and gives the original back to its
// children while the mark is still there; the value it keeps
// (syscall.origRlimitNofile) is out of our reach, so a child of os/exec,
// stopped by ptrace at its execve, shows it, once per process (~1.5 ms of
// CPU here). known is false if that probe fails (a traced runtime, ptrace
// denied).
func childNofile() (lim unix.Rlimit, set, known bool) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		return cur, false, false
	}
	if cur.Max == 0 || cur.Cur != cur.Max-1 {
		return cur, false, true // not Go's mark: children inherit ours
	}
	orig, ok := origNofile()
	if !ok {
		return cur, false, false
	}
	return orig, orig.Cur != cur.Cur, true
}

var origNofile = sync.OnceValues(func() (unix.Rlimit, bool) {
	var lim unix.Rlimit
	p, err := os.StartProcess("/proc/self/exe", []string{"estiba-rlimit-probe"}, &os.ProcAttr{
		// Stopped by ptrace at its execve: nothing of it ever runs.
		Sys: &syscall.SysProcAttr{Ptrace: true},
	})
	if err != nil {
		return lim, false
	}
	defer func() { p.Kill(); p.Wait() }()
	if err := unix.Prlimit(p.Pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		return lim, false
	}
	return lim, true
})

// procPPid is the parent of pid, from /proc/<pid>/stat.
func procPPid(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1]) // f[0] is field 3 (state), f[1] field 4
}

// The functions below run in the children (and spawn in the parent too):
// nosplit, raw system calls only, see the top of this file. A child that
// returns from rawVfork continues in the calling function's frame until
// its next call: there it only tests the result and calls the next stage,
// which never returns, so that the parent, resumed later in the same
// frame, finds what it left there (rawVfork itself keeps its return
// address out of the child's reach).

// spawn blocks every signal on this thread, vforks stage 1 (into its
// cgroup2 cgroup with clone3, if it has one) and, resumed once stage 1 has
// exited, restores the mask.
//
//go:nosplit
//go:norace
func (t *vforkSpawn) spawn() (uintptr, syscall.Errno) {
	// The three system calls run on one thread: nothing here lets the
	// scheduler move us (nosplit, no calls into the runtime, and no
	// preemption signal once the first has blocked them).
	_, _, e := syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.sigmask)), uintptr(unsafe.Pointer(&t.oldmask)), 8, 0, 0)
	if e != 0 {
		return 0, e
	}
	var pid uintptr
	if t.clone3 != nil {
		pid, e = rawClone3(t.clone3, unsafe.Sizeof(*t.clone3))
	} else {
		pid, e = rawVfork(unix.CLONE_VM | unix.CLONE_VFORK | uintptr(unix.SIGCHLD))
	}
	if e == 0 && pid == 0 {
		t.stage1()
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.oldmask)), 0, 8, 0, 0)
	return pid, e
}

//go:nosplit
//go:norace
func (t *vforkSpawn) fail(step int64, e syscall.Errno) {
	t.step, t.errno = step, int64(e)
	syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 127, 0, 0, 0, 0, 0)
}

// stage1: groups, joins, the user namespace, the new namespaces, init.
// It keeps the runtime's uid (host root: its capabilities in the user
// namespace come from setns, the new namespaces' owner from the user
// namespace it is in), so that no process with the container's host uid
// may signal it (a SIGSTOP would hold our thread, and syscall.ForkLock,
// as long as it liked): only stage 2 takes that uid, until its execve.
//
//go:nosplit
//go:norace
func (t *vforkSpawn) stage1() {
	if _, _, e := syscall.RawSyscall6(unix.SYS_SETGROUPS, 0, 0, 0, 0, 0, 0); e != 0 {
		t.fail(stepGroups, e)
	}
	for i := 0; i < len(t.joins); i++ {
		if _, _, e := syscall.RawSyscall6(unix.SYS_SETNS, uintptr(t.joins[i].fd), t.joins[i].flag, 0, 0, 0, 0); e != 0 {
			t.fail(int64(i), e)
		}
	}
	if _, _, e := syscall.RawSyscall6(unix.SYS_SETNS, uintptr(t.userFD), unix.CLONE_NEWUSER, 0, 0, 0, 0); e != 0 {
		t.fail(stepUser, e)
	}
	if t.unshare != 0 {
		if _, _, e := syscall.RawSyscall6(unix.SYS_UNSHARE, t.unshare, 0, 0, 0, 0, 0); e != 0 {
			t.fail(stepUnshare, e)
		}
	}
	pid, e := rawVfork(t.flags2)
	if e != 0 {
		t.fail(stepFork, e)
	}
	if pid == 0 {
		t.stage2()
	}
	// Resumed: init has exec'd, or has failed (t.errno is its report).
	t.initPid = int64(pid)
	if t.errno != 0 && t.orphan {
		// Our child, not the runtime's: reaped here, or it would go to
		// the subreaper as a zombie it never heard of.
		syscall.RawSyscall6(unix.SYS_WAIT4, pid, 0, unix.WALL, 0, 0, 0)
		t.initPid = 0
	}
	syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 0, 0, 0, 0, 0, 0)
}

// stage2 becomes init: the container's root, session, fds, signals,
// execveat.
//
//go:nosplit
//go:norace
func (t *vforkSpawn) stage2() {
	// gid first, the usual order: a uid change can cost capabilities.
	if _, _, e := syscall.RawSyscall6(unix.SYS_SETRESGID, 0, 0, 0, 0, 0, 0); e != 0 {
		t.fail(stepGid, e)
	}
	if _, _, e := syscall.RawSyscall6(unix.SYS_SETRESUID, 0, 0, 0, 0, 0, 0); e != 0 {
		t.fail(stepUid, e)
	}
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
	// Our signal handlers are a copy of the runtime's: Go's, which must
	// not run here (they would act on the runtime's state in the memory
	// we share, as its suspended thread). Caught signals go back to their
	// default before the mask opens, as in Go's own vfork child
	// (runtime_AfterForkInChild); ignored ones stay ignored, as execve
	// would keep them (one call per signal: set, and see what it was).
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig == uintptr(unix.SIGKILL) || sig == uintptr(unix.SIGSTOP) {
			continue
		}
		syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&t.dfl)), uintptr(unsafe.Pointer(&t.old)), 8, 0, 0)
		if t.old.handler == 1 { // SIG_IGN
			syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&t.old)), 0, 8, 0, 0)
		}
	}
	if t.nofile != nil {
		// As os/exec's child does (see childNofile).
		if _, _, e := syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(t.nofile)), 0, 0, 0); e != 0 {
			t.fail(stepRlimit, e)
		}
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.oldmask)), 0, 8, 0, 0)
	_, _, e := syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(t.exeFD), t.emptyStr, t.argv, t.envv, unix.AT_EMPTY_PATH, 0)
	// Blocked again: nothing may run here but the report.
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.sigmask)), 0, 8, 0, 0)
	t.fail(stepExec, e)
}
