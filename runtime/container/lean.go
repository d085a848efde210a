package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/openat"
	"github.com/estiba/estiba/runtime/caps"
	"github.com/estiba/estiba/runtime/cgroups"
	"github.com/estiba/estiba/runtime/hooks"
	"github.com/estiba/estiba/runtime/initproc"
	"github.com/estiba/estiba/runtime/initstub"
	"github.com/estiba/estiba/runtime/nsthread"
	"github.com/estiba/estiba/runtime/procfs"
	"github.com/estiba/estiba/runtime/rootfs"
	"github.com/estiba/estiba/runtime/seccomp"
)

// The lean init.
//
// A Go init (cmd/estiba-init) costs a Go runtime start per container: ~5 ms
// of CPU on this project's VMs, where the stub's start, its execve
// included, takes ~0.7 ms. For
// the common container, init is instead the init stub (runtime/initstub): a
// few hundred lines of freestanding C that runs lists of raw system calls
// the runtime sends it, and nothing else. The runtime does the work that
// needs decisions:
//
//   - the root filesystem, from a thread of its own that has joined the
//     stub's mount, network, IPC, UTS and cgroup namespaces (nsthread):
//     rootfs.Setup and Pivot run there as they would in a Go init (every
//     path resolved in the rootfs by descriptor). pivot_root moves the
//     root of every process of the namespace that was at the old one:
//     the stub too, which Pivot's caller checks;
//   - file systems tied to the creator's namespaces or credentials (proc
//     to its pid namespace, sysfs to its network namespace, tmpfs to its
//     user namespace...) are created by the stub (fsopen, fsconfig,
//     fsmount) and their mounts sent back to the thread, which places
//     them;
//   - sysctls and the hostname through the thread's namespaces,
//     oom_score_adj through /proc/<pid>;
//   - the capability, seccomp and credential steps are worked out here and
//     run by the stub as its last program, which also waits on the exec
//     fifo and execs the container's process.
//
// What the stub cannot do (a terminal, hooks that run in the container,
// a seccomp listener, LSM labels, scheduling attributes, idmapped mounts,
// --no-pivot, a time namespace, a joined user namespace, a rootless
// runtime) keeps the Go init: leanFor says which.
//
// The stub is exec'd from a sealed memfd copy of its file (stubExe in
// exe.go; the Go init from a read-only clone of its mount): a container
// process never gets a writable handle on it (CVE-2019-5736).

// StubName is the init stub's file name, installed beside the runtime.
const StubName = "estiba-init-stub"

// StubBeside returns the path of the init stub beside this executable, or
// "" if there is none (then every container gets the Go init).
func StubBeside() string { return beside(StubName) }

// leanPlan is what a lean create works out before init starts.
type leanPlan struct {
	seccomp *seccomp.Program
	caps    caps.Plan
	// tasks are the cgroup v1 tasks files that the stub gets with its
	// first program and joins first (joinSteps); spawn opens them while
	// the stub starts.
	tasks []*os.File
}

// leanFor returns the lean plan for spec, or nil when the container needs
// the Go init. Its errors are the spec's: the Go init would fail on them
// too.
func (r *Runtime) leanFor(spec *specs.Spec, o CreateOptions, plan *nsPlan) (*leanPlan, error) {
	if r.Stub == "" || runtime.GOARCH != "amd64" || os.Geteuid() != 0 || o.NoPivot {
		return nil, nil
	}
	p := spec.Process
	if p == nil || p.Terminal || p.ApparmorProfile != "" || p.SelinuxLabel != "" || p.IOPriority != nil || p.Scheduler != nil {
		return nil, nil
	}
	if h := spec.Hooks; h != nil && len(h.CreateContainer)+len(h.StartContainer) > 0 {
		return nil, nil
	}
	l := spec.Linux
	if l.Personality != nil || plan.newTime || plan.needsTrampoline() ||
		plan.cloneflags&(unix.CLONE_NEWNS|unix.CLONE_NEWPID) != unix.CLONE_NEWNS|unix.CLONE_NEWPID {
		return nil, nil
	}
	for _, m := range spec.Mounts {
		if len(m.UIDMappings)+len(m.GIDMappings) > 0 || slices.Contains(m.Options, "idmap") || slices.Contains(m.Options, "ridmap") {
			return nil, nil
		}
	}
	if l.Seccomp != nil && l.Seccomp.ListenerPath != "" {
		return nil, nil
	}
	// A user namespace that does not own the network namespace cannot
	// mount sysfs, where rootfs binds the host's /sys instead: a failed
	// step ends the stub.
	if plan.cloneflags&unix.CLONE_NEWUSER != 0 && plan.cloneflags&unix.CLONE_NEWNET == 0 {
		return nil, nil
	}
	lp := &leanPlan{}
	if l.Seccomp != nil {
		prog, err := r.Seccomp.Compile(l.Seccomp)
		if err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
		if prog.Notify {
			return nil, nil
		}
		lp.seccomp = prog
	}
	// The permitted set the stub holds at capset: every capability in a
	// new user namespace (setns gives them all), else ours (it keeps the
	// runtime's through the uid change, PR_SET_KEEPCAPS).
	perm, err := caps.Permitted()
	if plan.cloneflags&unix.CLONE_NEWUSER != 0 {
		perm, err = caps.All()
	}
	if err != nil {
		return nil, err
	}
	if lp.caps, err = caps.PlanFor(p.Capabilities, perm); err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	return lp, nil
}

// stubCmd is the exec of the init stub: fds 0-2 stdio, then the preserved
// fds, then the sync socket, whose number is its only argument.
func stubCmd(exe string, stdio Stdio, preserve int, sync *os.File) *exec.Cmd {
	cmd := &exec.Cmd{Path: exe, Args: []string{StubName, strconv.Itoa(3 + preserve)}}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	for i := 0; i < preserve; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-fd"))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, sync)
	cmd.Env = []string{}
	return cmd
}

// stub is the runtime's end of a conversation with the init stub.
type stub struct {
	cmd  *exec.Cmd
	sock *os.File
	// mu makes each program and its reply one exchange: the rootfs
	// setup and the create's own steps talk to the stub at once.
	mu sync.Mutex
}

// run sends p and waits for its reply, returning the fds it sent.
func (s *stub) run(p *initstub.Program) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fds, err := initstub.Exchange(s.sock, p)
	if err != nil {
		var se *initstub.StepError
		if !errors.As(err, &se) {
			err = initDied(s.cmd, err)
		}
		return nil, fmt.Errorf("init: %w", err)
	}
	return fds, nil
}

// NewFSBatch makes the stub create file system instances, in its
// namespaces and with its credentials, in one program, and send back the
// detached mounts (for rootSetup, the FSBatchMaker).
func (s *stub) NewFSBatch(reqs []rootfs.FSRequest) ([]int, error) {
	return s.newFSBatch(reqs, true)
}

// newFSBatch is NewFSBatch; without mount, the stub sends back the file
// system contexts, created (FSCONFIG_CMD_CREATE: the superblock is made)
// but not mounted yet, for fsmountAll.
func (s *stub) newFSBatch(reqs []rootfs.FSRequest, mount bool) ([]int, error) {
	p := &initstub.Program{}
	for _, q := range reqs {
		addNewFS(p, q.Type, q.Config, mount)
	}
	fds, err := s.run(p)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", reqs[0].Type, err)
	}
	if len(fds) != len(reqs) {
		closeFDs(fds)
		return nil, fmt.Errorf("mount %s: init sent %d fds for %d file systems", reqs[0].Type, len(fds), len(reqs))
	}
	return fds, nil
}

// addNewFS adds to p the steps of rootfs.NewFS: fsopen, fsconfig, fsmount,
// and the mount sent back; without mount, the context is sent back before
// fsmount.
func addNewFS(p *initstub.Program, typ string, c rootfs.FSConfig, mount bool) {
	const fsfd, mnt = 0, 1
	p.Syscall("fsopen "+typ, unix.SYS_FSOPEN, initstub.Str(typ), initstub.Int(unix.FSOPEN_CLOEXEC)).Out(fsfd)
	if c.Source != "" {
		p.Syscall(typ+": source "+c.Source, unix.SYS_FSCONFIG, initstub.Slot(fsfd), initstub.Int(unix.FSCONFIG_SET_STRING), initstub.Str("source"), initstub.Str(c.Source), initstub.Int(0))
	}
	for _, f := range c.Flags {
		p.Syscall(typ+": option "+f, unix.SYS_FSCONFIG, initstub.Slot(fsfd), initstub.Int(unix.FSCONFIG_SET_FLAG), initstub.Str(f), initstub.Int(0), initstub.Int(0))
	}
	for _, kv := range c.Params {
		p.Syscall(typ+": option "+kv[0]+"="+kv[1], unix.SYS_FSCONFIG, initstub.Slot(fsfd), initstub.Int(unix.FSCONFIG_SET_STRING), initstub.Str(kv[0]), initstub.Str(kv[1]), initstub.Int(0))
	}
	p.Syscall("create "+typ, unix.SYS_FSCONFIG, initstub.Slot(fsfd), initstub.Int(unix.FSCONFIG_CMD_CREATE), initstub.Int(0), initstub.Int(0), initstub.Int(0))
	if !mount {
		p.SendFD("send "+typ+" context", initstub.Slot(fsfd))
		p.Syscall("close", unix.SYS_CLOSE, initstub.Slot(fsfd))
		return
	}
	p.Syscall("fsmount "+typ, unix.SYS_FSMOUNT, initstub.Slot(fsfd), initstub.Int(unix.FSMOUNT_CLOEXEC), initstub.Int(uintptr(c.Attrs))).Out(mnt)
	p.SendFD("send "+typ+" mount", initstub.Slot(mnt))
	p.Syscall("close", unix.SYS_CLOSE, initstub.Slot(mnt))
	p.Syscall("close", unix.SYS_CLOSE, initstub.Slot(fsfd))
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// nsTypes are the stub's namespaces that the runtime's threads join.
const nsTypes = unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP

// rootSetup is rootfs.Setup running for a lean create on a thread of its
// own while the caller makes the state directory and the cgroup: the stub
// is idle until its first mount, and the two interleave their system calls.
// Only the cgroup mount needs the stub in its cgroup (and cgroup namespace):
// it waits for inCgroup. The thread then stays for the pivot (onThread): a
// thread and its joins are not free either.
type rootSetup struct {
	stub     *stub
	pid      int
	newCgNS  bool
	once     sync.Once
	inCgroup chan struct{}
	cgErr    error // set before inCgroup is closed
	// hostCgroups is the stub's cgroup file as the runtime sees it, set
	// before inCgroup is closed when the stub makes a cgroup namespace.
	hostCgroups []byte
	procfs      *procfs.Shared     // Runtime.Procfs
	shared      *rootfs.SharedDirs // Runtime.Shared
	done        chan struct{}
	root        *rootfs.Root
	err         error
	jobs        chan func() error // to run on the thread after Setup
	jobErr      chan error
	endOnce     sync.Once
	// early is Setup's first batch of file systems, asked of the stub as
	// it starts (nil if Setup makes no batch).
	early *earlyFS
}

// earlyFS is the batch of file systems that Setup asks for first
// (rootfs.PlannedFS), made by the stub while the setup thread is still
// starting and joining its namespaces: a round trip of ~0.5 ms (proc,
// sysfs, mqueue, tmpfs, devpts superblocks) off the create's critical
// path. None of them needs the stub in its cgroups. The stub sends the
// created contexts, and take mounts them (fsmount) where Setup asks: a
// mount's id is given at fsmount, and mountinfo lists mounts in id order,
// which would otherwise put these before the rootfs's own mount and not
// where a Go init has them.
type earlyFS struct {
	reqs []rootfs.FSRequest
	done chan struct{}
	fds  []int
	err  error

	mu    sync.Mutex
	taken bool
}

// startEarlyFS has s make spec's first batch now, if Setup will ask for one
// (rootfs prefetches two or more).
func startEarlyFS(s *stub, spec *specs.Spec) *earlyFS {
	reqs := rootfs.PlannedFS(spec, nil)
	if len(reqs) < 2 {
		return nil
	}
	e := &earlyFS{reqs: reqs, done: make(chan struct{})}
	go func() {
		e.fds, e.err = s.newFSBatch(reqs, false)
		close(e.done)
	}()
	return e
}

// take returns the batch if reqs is the one made and no one took it.
func (e *earlyFS) take(reqs []rootfs.FSRequest) (fds []int, ok bool, err error) {
	if e == nil {
		return nil, false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.taken || !rootfs.SameFS(reqs, e.reqs) {
		return nil, false, nil
	}
	e.taken = true
	<-e.done
	if e.err != nil {
		return nil, true, e.err
	}
	fds, err = fsmountAll(e.fds, e.reqs)
	return fds, true, err
}

// fsmountAll mounts the created contexts ctxs of reqs (detached, close on
// exec) and closes them.
func fsmountAll(ctxs []int, reqs []rootfs.FSRequest) ([]int, error) {
	defer closeFDs(ctxs)
	var fds []int
	for i, fsfd := range ctxs {
		fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(reqs[i].Config.Attrs))
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("mount %s: fsmount: %w", reqs[i].Type, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// release closes the batch's mounts unless Setup took them: call it once
// Setup has returned.
func (e *earlyFS) release() {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.taken {
		e.taken = true
		<-e.done
		closeFDs(e.fds)
	}
}

// startRootSetup starts rootfs.Setup in the stub's namespaces.
func startRootSetup(s *stub, rec *Record, newCgroupNS bool, proc *procfs.Shared, shared *rootfs.SharedDirs) *rootSetup {
	rs := &rootSetup{
		stub: s, pid: rec.Pid, newCgNS: newCgroupNS, procfs: proc, shared: shared, inCgroup: make(chan struct{}), done: make(chan struct{}),
		jobs: make(chan func() error, 1), jobErr: make(chan error, 1),
		early: startEarlyFS(s, rec.Spec),
	}
	go func() {
		ran := false
		err := nsthread.Run(rec.Pid, nsTypes, func() error {
			ran = true
			done, err := actAsContainerRoot(rec.Spec)
			defer done()
			if err == nil {
				rs.root, err = leanSetupRoot(rs, rec.Spec, rec)
			}
			rs.early.release()
			rs.err = err
			close(rs.done)
			if rs.err != nil {
				return nil
			}
			if job, ok := <-rs.jobs; ok {
				rs.jobErr <- job()
			}
			return nil
		})
		if !ran {
			rs.early.release()
			rs.err = err
			close(rs.done)
		}
	}()
	return rs
}

// placed tells the setup that the stub is in its cgroup (err nil), or
// that it never will be. Only the first call counts.
func (rs *rootSetup) placed(err error) {
	rs.once.Do(func() {
		rs.cgErr = err
		close(rs.inCgroup)
	})
}

// wait returns Setup's result, after placed.
func (rs *rootSetup) wait() (*rootfs.Root, error) {
	<-rs.done
	return rs.root, rs.err
}

// onThread runs f on Setup's thread, once Setup succeeded; the thread
// ends after it.
func (rs *rootSetup) onThread(f func() error) error {
	if _, err := rs.wait(); err != nil {
		return err
	}
	rs.endOnce.Do(func() { rs.jobs <- f; close(rs.jobs) })
	return <-rs.jobErr
}

// abort ends the setup on a failed create: nothing will place the stub,
// the thread gets no job, and what Setup made is dropped.
func (rs *rootSetup) abort() {
	rs.placed(errors.New("create failed"))
	root, _ := rs.wait()
	rs.endOnce.Do(func() { close(rs.jobs) })
	if root != nil {
		root.Close()
	}
}

// NewFS is the stub's, but a cgroup file system must wait until the stub
// is in its cgroup namespace (rootfs.FSMaker).
func (rs *rootSetup) NewFS(typ string, c rootfs.FSConfig) (int, error) {
	fds, err := rs.NewFSBatch([]rootfs.FSRequest{{Type: typ, Config: c}})
	if err != nil {
		return -1, err
	}
	return fds[0], nil
}

// NewFSBatch is NewFS for several (rootfs.FSBatchMaker).
func (rs *rootSetup) NewFSBatch(reqs []rootfs.FSRequest) ([]int, error) {
	if fds, ok, err := rs.early.take(reqs); ok {
		return fds, err
	}
	for _, q := range reqs {
		if q.Type == "cgroup" || q.Type == "cgroup2" {
			<-rs.inCgroup
			if rs.cgErr != nil {
				return nil, rs.cgErr
			}
			break
		}
	}
	return rs.stub.NewFSBatch(reqs)
}

// cgroups is rootfs.Options.Cgroups: the stub's cgroup file, once it is
// in its cgroup. When the stub makes a cgroup namespace of its own, that is
// the file as the runtime sees it (hostCgroups): host paths, and the new
// namespace's root (rootfs.Options.CgroupHostPaths), since the stub unshares
// it once placed (firstSteps). Otherwise it is read on Setup's thread,
// which joined the stub's cgroup namespace (the paths are relative to the
// reader's).
func (rs *rootSetup) cgroups() ([]byte, error) {
	<-rs.inCgroup
	if rs.cgErr != nil {
		return nil, rs.cgErr
	}
	if rs.newCgNS {
		return rs.hostCgroups, nil
	}
	b, err := openat.ReadFile("/proc/" + strconv.Itoa(rs.pid) + "/cgroup")
	if err != nil {
		return nil, fmt.Errorf("init's cgroups: %w", err)
	}
	return b, nil
}

// leanConverse finishes a lean create (see the top of this file) once the
// stub is in its cgroup, in the order of initproc's runCreate: cgroup
// namespace and keyring (first program), the rootfs (rs, running already),
// the runtime's hooks, pivot, the process's settings, ready; then, on
// start, the exec.
func (r *Runtime) leanConverse(rs *rootSetup, lp *leanPlan, rec *Record, o CreateOptions, plan *nsPlan, cg cgroups.Manager, fifo string) error {
	spec := rec.Spec
	// Above every fd the stub has: stdio, the preserved fds, the sync
	// socket, as many fds as a program can bring (the tasks files, closed
	// before), and the fifo's first fd (the lowest free).
	fifoFD := 3 + o.PreserveFDs + 1 + initstub.MaxFDs + 8
	first := &initstub.Program{}
	joinSteps(first, lp.tasks)
	firstSteps(first, rec.ID, fifo, fifoFD, plan.newCgroupNS, !o.NoNewKeyring)
	_, err := rs.stub.run(first)
	if err == nil && plan.newCgroupNS {
		// Not on Setup's thread: it may have joined the stub's cgroup
		// namespace after the unshare above, and would read "/" for
		// every hierarchy. This goroutine's thread is in the runtime's.
		rs.hostCgroups, err = openat.ReadFile("/proc/" + strconv.Itoa(rec.Pid) + "/cgroup")
		if err != nil {
			err = fmt.Errorf("init's cgroups: %w", err)
		}
	}
	rs.placed(err)
	if err != nil {
		return err
	}
	// The record is complete: its file is written while the rootfs is
	// still being set up, and put in place at the end of create.
	if err := r.stageSave(rec); err != nil {
		return err
	}
	root, err := rs.wait()
	if err != nil {
		return err
	}
	defer root.Close()
	if err := finalDevices(cg, spec); err != nil {
		return err
	}
	// Prestart (deprecated) and createRuntime hooks run in the runtime's
	// namespaces once the container's namespaces and mounts exist, before
	// pivot_root (as converse does).
	if h := spec.Hooks; h != nil {
		st := specs.State{Version: specs.Version, ID: rec.ID, Status: specs.StateCreating, Pid: rec.Pid, Bundle: rec.Bundle, Annotations: spec.Annotations}
		pre := st
		pre.Status = specs.StateCreated
		if err := hooks.Run("prestart", h.Prestart, &pre); err != nil {
			return err
		}
		if err := hooks.Run("createRuntime", h.CreateRuntime, &st); err != nil {
			return err
		}
	}
	var path string
	err = rs.onThread(func() (err error) {
		if err := root.Pivot(); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		// In the container's root now, as init would be.
		path, err = initproc.LookPath(spec.Process.Args[0], spec.Process.Env)
		return err
	})
	if err != nil {
		return err
	}
	// Through the host's /proc, which the thread above no longer sees.
	if err := root.CheckFollowed(rec.Pid); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	last, err := r.lastProgram(lp, spec.Process, o.PreserveFDs, fifoFD, path)
	if err != nil {
		return err
	}
	_, err = rs.stub.run(last)
	return err
}

// actAsContainerRoot makes the thread create files as the container's root
// would, when it has a user namespace: host root's uid 0 has no mapping in
// the file systems init made there (EOVERFLOW), and what the thread creates
// in the rootfs (mount points, copies) belongs to the container as with a
// Go init. Call done when the thread's work is over.
func actAsContainerRoot(spec *specs.Spec) (done func(), err error) {
	if !hasNS(spec, specs.UserNamespace) {
		return func() {}, nil
	}
	uid, gid := hostID(spec.Linux.UIDMappings, 0), hostID(spec.Linux.GIDMappings, 0)
	if uid < 0 || gid < 0 {
		return func() {}, fmt.Errorf("the user namespace must map uid and gid 0: %w", ErrInvalid)
	}
	done, err = nsthread.SetFSOwner(uid, gid)
	if err != nil {
		return func() {}, err
	}
	return done, nil
}

// joinSteps has the stub join its cgroup v1 hierarchies, as the first
// steps of its first program: "0" written to each tasks file (sent with
// the program) moves the stub's only thread, without the kernel's attach
// lock (cgroups.Entry). The files are closed after: nothing of them
// reaches the container. The stub may have run the rootfs setup's
// programs before (file systems made in its namespaces); none of those
// needs its cgroups but a cgroup mount, which waits for placed.
func joinSteps(p *initstub.Program, tasks []*os.File) {
	for _, f := range tasks {
		fd := p.PassFD(int(f.Fd()))
		name := f.Name()
		p.Syscall("join cgroup: write 0 to "+name, unix.SYS_WRITE, fd, initstub.Str("0"), initstub.Int(1))
		p.Syscall("join cgroup: close", unix.SYS_CLOSE, fd)
	}
}

// firstSteps are what the stub does as itself before the mounts, once in
// its cgroups (joinSteps, and the parent's part): become non-dumpable (it
// will hold an fd of the host's exec fifo, which /proc/1/fd would
// otherwise hand a process exec'd into the created container), the cgroup
// namespace (rooted where its creator is: in the container's cgroups), its
// session keyring, and the exec fifo, opened by path while the host's tree
// is still its own, moved to fifoFD (a number the last program can name in
// /proc/self/fd).
func firstSteps(p *initstub.Program, id, fifo string, fifoFD int, cgroupNS, keyring bool) {
	p.Syscall("prctl(PR_SET_DUMPABLE)", unix.SYS_PRCTL, initstub.Int(unix.PR_SET_DUMPABLE), initstub.Int(0), initstub.Int(0), initstub.Int(0), initstub.Int(0))
	if cgroupNS {
		p.Syscall("unshare cgroup namespace", unix.SYS_UNSHARE, initstub.Int(unix.CLONE_NEWCGROUP))
	}
	if keyring {
		const keyctlJoinSessionKeyring = 1
		p.Syscall("join session keyring", unix.SYS_KEYCTL, initstub.Int(keyctlJoinSessionKeyring), initstub.Str("_ses."+id)).Allow(unix.ENOSYS)
	}
	const tmp = 0
	p.Syscall("exec fifo: open "+fifo, unix.SYS_OPENAT, initstub.Signed(unix.AT_FDCWD), initstub.Str(fifo), initstub.Int(unix.O_PATH|unix.O_CLOEXEC)).Out(tmp)
	p.Syscall("exec fifo: dup", unix.SYS_DUP3, initstub.Slot(tmp), initstub.Int(uintptr(fifoFD)), initstub.Int(unix.O_CLOEXEC))
	p.Syscall("exec fifo: close", unix.SYS_CLOSE, initstub.Slot(tmp))
	// pivot_root takes along a process whose cwd (and root) is the old
	// root; the stub starts in the runtime's cwd (which a relative fifo
	// path above is relative to).
	p.Syscall("chdir /", unix.SYS_CHDIR, initstub.Str("/"))
}

// sizeofStat is the struct stat that fstat fills.
const sizeofStat = int(unsafe.Sizeof(unix.Stat_t{}))

// lastProgram is initproc's prepareExec, waitStart and finishExec as system
// calls: fds, rlimits, cwd, no_new_privs or an early seccomp filter, the
// bounding set, credentials, capabilities, umask; ready; then, once start
// opens the exec fifo, the timer slack, the seccomp filter and execve.
func (r *Runtime) lastProgram(lp *leanPlan, p *specs.Process, preserve, fifoFD int, path string) (*initstub.Program, error) {
	prog := &initstub.Program{}
	// Only stdio and the preserved fds reach the container
	// (CVE-2024-21626); first, as a seccomp filter may not allow it.
	prog.Syscall("close_range", unix.SYS_CLOSE_RANGE, initstub.Int(uintptr(3+preserve)), initstub.Int(^uintptr(0)), initstub.Int(unix.CLOSE_RANGE_CLOEXEC))
	for _, rl := range p.Rlimits {
		res, ok := initproc.Rlimits[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		prog.Syscall("rlimit "+rl.Type, unix.SYS_PRLIMIT64, initstub.Int(0), initstub.Int(uintptr(res)), initstub.Bytes(le64(rl.Soft, rl.Hard)), initstub.Int(0))
	}
	prog.Syscall("chdir to cwd "+p.Cwd, unix.SYS_CHDIR, initstub.Str(p.Cwd))
	prog.CheckCwd("cwd "+p.Cwd+" is outside the container root", prog.Buffer(4096))
	seccompLate := lp.seccomp != nil && p.NoNewPrivileges
	if p.NoNewPrivileges {
		prog.Syscall("no_new_privs", unix.SYS_PRCTL, initstub.Int(unix.PR_SET_NO_NEW_PRIVS), initstub.Int(1), initstub.Int(0), initstub.Int(0), initstub.Int(0))
	} else if lp.seccomp != nil {
		// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN,
		// which is about to go.
		prog.Seccomp("seccomp", uintptr(lp.seccomp.Flags), filterBytes(lp.seccomp))
	}
	if p.Capabilities != nil {
		for _, c := range lp.caps.Drop {
			prog.Syscall("drop "+caps.Name(c)+" from bounding set", unix.SYS_PRCTL, initstub.Int(unix.PR_CAPBSET_DROP), initstub.Int(uintptr(c)), initstub.Int(0), initstub.Int(0), initstub.Int(0))
		}
	}
	userSteps(prog, p.User)
	if p.Capabilities != nil {
		capSteps(prog, lp.caps)
	}
	if p.User.Umask != nil {
		prog.Syscall("umask", unix.SYS_UMASK, initstub.Int(uintptr(*p.User.Umask)))
	}
	prog.Reply()
	// waitStart: the fifo reopened for writing through /proc/self/fd (the
	// container's procfs now), checked to be the fifo itself.
	want, got := prog.Buffer(sizeofStat), prog.Buffer(sizeofStat)
	const w = 0
	prog.Syscall("exec fifo: stat", unix.SYS_FSTAT, initstub.Int(uintptr(fifoFD)), want.Arg())
	prog.Syscall("open exec fifo", unix.SYS_OPENAT, initstub.Signed(unix.AT_FDCWD), initstub.Str("/proc/self/fd/"+strconv.Itoa(fifoFD)), initstub.Int(unix.O_WRONLY|unix.O_CLOEXEC)).Out(w)
	prog.Syscall("exec fifo: stat", unix.SYS_FSTAT, initstub.Slot(w), got.Arg())
	// st_dev and st_ino, the first 16 bytes of amd64's struct stat.
	prog.Equal("open exec fifo: /proc/self/fd led elsewhere", want, 0, got, 0, 16)
	prog.Syscall("write exec fifo", unix.SYS_WRITE, initstub.Slot(w), initstub.Bytes([]byte{0}), initstub.Int(1))
	if r.TimerSlack != 0 {
		prog.Syscall("timer slack", unix.SYS_PRCTL, initstub.Int(unix.PR_SET_TIMERSLACK), initstub.Int(uintptr(r.TimerSlack)), initstub.Int(0), initstub.Int(0), initstub.Int(0))
	}
	if seccompLate {
		// Last, so that it filters the container's process, not the setup.
		prog.Seccomp("seccomp", uintptr(lp.seccomp.Flags), filterBytes(lp.seccomp))
	}
	prog.Syscall("exec "+p.Args[0], unix.SYS_EXECVE, initstub.Str(path), initstub.StrArray(p.Args), initstub.StrArray(p.Env))
	return prog, nil
}

// userSteps switches credentials as initproc's setUser: PR_SET_KEEPCAPS
// (the permitted set survives the uid change), groups, gid, uid.
func userSteps(prog *initstub.Program, u specs.User) {
	prog.Syscall("keepcaps", unix.SYS_PRCTL, initstub.Int(unix.PR_SET_KEEPCAPS), initstub.Int(1), initstub.Int(0), initstub.Int(0), initstub.Int(0))
	groups := make([]byte, 0, 4*len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = binary.LittleEndian.AppendUint32(groups, g)
	}
	gp := initstub.Int(0)
	if len(groups) > 0 {
		gp = initstub.Bytes(groups)
	}
	prog.Syscall(fmt.Sprintf("setgroups %v", u.AdditionalGids), unix.SYS_SETGROUPS, initstub.Int(uintptr(len(u.AdditionalGids))), gp)
	prog.Syscall(fmt.Sprintf("setgid %d", u.GID), unix.SYS_SETRESGID, initstub.Int(uintptr(u.GID)), initstub.Int(uintptr(u.GID)), initstub.Int(uintptr(u.GID)))
	prog.Syscall(fmt.Sprintf("setuid %d", u.UID), unix.SYS_SETRESUID, initstub.Int(uintptr(u.UID)), initstub.Int(uintptr(u.UID)), initstub.Int(uintptr(u.UID)))
}

// capSteps is caps.Apply as system calls: capset, then the ambient set.
func capSteps(prog *initstub.Program, c caps.Plan) {
	// struct __user_cap_header_struct {u32 version; i32 pid}, then two
	// struct __user_cap_data_struct {u32 effective, permitted, inheritable}.
	hdr := binary.LittleEndian.AppendUint32(nil, unix.LINUX_CAPABILITY_VERSION_3)
	hdr = binary.LittleEndian.AppendUint32(hdr, 0)
	var data []byte
	for _, shift := range []uint{0, 32} {
		for _, set := range []caps.Set{c.Effective, c.Permitted, c.Inheritable} {
			data = binary.LittleEndian.AppendUint32(data, uint32(set>>shift))
		}
	}
	prog.Syscall("capset", unix.SYS_CAPSET, initstub.Bytes(hdr), initstub.Bytes(data))
	clear := prog.Syscall("clear ambient capabilities", unix.SYS_PRCTL, initstub.Int(unix.PR_CAP_AMBIENT), initstub.Int(unix.PR_CAP_AMBIENT_CLEAR_ALL), initstub.Int(0), initstub.Int(0), initstub.Int(0))
	if len(c.Ambient) == 0 {
		clear.Allow(unix.EINVAL) // a kernel before 4.3, and nothing to raise
	}
	for _, cp := range c.Ambient {
		prog.Syscall("raise ambient "+caps.Name(cp), unix.SYS_PRCTL, initstub.Int(unix.PR_CAP_AMBIENT), initstub.Int(unix.PR_CAP_AMBIENT_RAISE), initstub.Int(uintptr(cp)), initstub.Int(0), initstub.Int(0))
	}
}

// filterBytes is the filter as struct sock_filter[] (u16 code, u8 jt, u8
// jf, u32 k).
func filterBytes(p *seccomp.Program) []byte {
	b := make([]byte, 0, 8*len(p.Instructions))
	for _, ins := range p.Instructions {
		b = binary.LittleEndian.AppendUint16(b, ins.Op)
		b = append(b, ins.Jt, ins.Jf)
		b = binary.LittleEndian.AppendUint32(b, ins.K)
	}
	return b
}

// le64 is a struct rlimit (two u64).
func le64(a, b uint64) []byte {
	return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, a), b)
}

// leanSetupRoot runs on a thread in the stub's namespaces: the hostname,
// oom_score_adj, the root filesystem, and the sysctls, written through the
// container's own proc instance as soon as the stub has made it
// (rootfs.Options.ProcReady). Through the spawner's shared procfs instance
// (rs.procfs), each lookup under /proc/sys/net compared the name with that
// of every other network namespace that had looked it up there (the dentries
// differ per namespace, proc_sys_compare): at N=1000 containers, 3% of the
// host's CPU in a serial start run. A spec without a proc mount still
// writes them through the shared instance.
func leanSetupRoot(rs *rootSetup, spec *specs.Spec, rec *Record) (*rootfs.Root, error) {
	var adj *int
	if spec.Process != nil {
		adj = spec.Process.OOMScoreAdj
	}
	pid := strconv.Itoa(rec.Pid)
	if err := initproc.ProcWrites(nil, adj, pid, rs.procfs); err != nil {
		return nil, err
	}
	if err := initproc.SetUTS(spec); err != nil {
		return nil, err
	}
	sysctlsDone := len(spec.Linux.Sysctl) == 0
	root, err := rootfs.Setup(spec, rec.Bundle, rootfs.Options{
		InUserNS: hasNS(spec, specs.UserNamespace), FS: rs, Cgroups: rs.cgroups,
		CgroupHostPaths: rs.newCgNS, CgroupPID: rec.Pid, Shared: rs.shared,
		ProcReady: func(proc int) error {
			if sysctlsDone {
				return nil
			}
			h, err := procfs.At(proc)
			if err != nil {
				return err
			}
			sysctlsDone = true
			return initproc.WriteSysctls(h, spec.Linux.Sysctl)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if !sysctlsDone {
		if err := initproc.ProcWrites(spec.Linux.Sysctl, nil, pid, rs.procfs); err != nil {
			root.Close()
			return nil, err
		}
	}
	return root, nil
}
