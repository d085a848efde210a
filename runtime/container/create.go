package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/openat"
	"github.com/estiba/estiba/internal/topdir"
	"github.com/estiba/estiba/runtime/cgroups"
	"github.com/estiba/estiba/runtime/hooks"
	"github.com/estiba/estiba/runtime/initproc"
	"github.com/estiba/estiba/runtime/specjson"
)

// Container is a created container whose init this process started. Only
// the process that called Create (or Run) can wait for it.
type Container struct {
	ID      string
	Process *os.Process
	cmd     *exec.Cmd
	// rt and cg, set by Create, let Delete skip re-reading the host's
	// cgroup layout (mountinfo) that Create already parsed.
	rt *Runtime
	cg cgroups.Manager
	// rec is the record Create saved: Start uses it instead of reading
	// and decoding state.json again.
	rec *Record
}

// Start is Runtime.Start for a container this process created, without
// re-reading its state from disk. What another process may have changed
// since (a kill, a delete, a start) shows in the status, which Start
// derives from the live process and the exec fifo, not from the record.
func (c *Container) Start() error {
	if c.rt == nil || c.rec == nil {
		return fmt.Errorf("start %q: not a container made by Create: %w", c.ID, ErrInvalid)
	}
	return c.rt.start(c.rec)
}

// Delete is Runtime.Delete for a container this process created, reusing
// its cgroup manager and record. (A Container from Exec has neither.)
// What another process may have changed in the record on disk since (a
// pause) is not read: the status comes from the live process, and the
// rest (pid, cgroup, hooks) is fixed at create.
func (c *Container) Delete(force bool) error {
	if c.rt == nil {
		return fmt.Errorf("delete %q: not a container made by Create: %w", c.ID, ErrInvalid)
	}
	// A state file that is gone (another delete) or broken takes the
	// general path, which knows what to do with it.
	if _, err := os.Lstat(filepath.Join(c.rt.dir(c.ID), stateFile)); c.rec == nil || err != nil {
		return c.rt.delete(c.ID, force, c.cg)
	}
	return c.rt.deleteRecord(c.rec, force, c.cg)
}

// Wait waits for the container's init to exit and returns its exit code
// (128+signal when killed by a signal).
func (c *Container) Wait() (int, error) {
	err := c.cmd.Wait()
	return exitCode(c.cmd.ProcessState, err)
}

func exitCode(ps *os.ProcessState, err error) (int, error) {
	if ps == nil {
		return -1, err
	}
	ws := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// LoadSpec reads <bundle>/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	s, _, err := readSpec(bundle)
	return s, err
}

// readSpec reads and decodes <bundle>/config.json, returning its bytes
// too: create keeps them as spec.json as they are, without encoding.
func readSpec(bundle string) (*specs.Spec, []byte, error) {
	b, err := openat.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("read bundle config: %w", err)
	}
	s, err := specjson.Decode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("decode %s/config.json: %w: %w", bundle, err, ErrInvalid)
	}
	return s, b, nil
}

// Create creates container id from the bundle: its state directory, cgroup,
// namespaces and root filesystem, with init waiting for Start. On error
// nothing of it remains (no state directory, cgroup, process or mount).
func (r *Runtime) Create(id, bundle string, o CreateOptions) (c *Container, err error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if bundle, err = filepath.Abs(bundle); err != nil {
		return nil, fmt.Errorf("bundle path: %w", err)
	}
	probePidfd()
	spec, raw, err := readSpec(bundle)
	if err != nil {
		return nil, err
	}
	if err := Validate(spec); err != nil {
		return nil, err
	}
	if spec.Process != nil && spec.Process.Terminal && o.ConsoleSocket == "" {
		return nil, fmt.Errorf("process.terminal is set: --console-socket is required: %w", ErrInvalid)
	}
	// The undo chain runs unless Create gets to its end: on an error and
	// also on a panic, where err is not set.
	var undo undoChain
	done := false
	defer func() {
		if !done {
			undo.run()
		}
	}()
	rec := newRecord(id, bundle, spec)
	p, err := r.spawn(rec, raw, o, &undo)
	if err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, rec.Pid); err != nil {
			return nil, err
		}
	}
	save := r.save
	if rec.staged {
		save = r.commitSave
	}
	if err := save(rec); err != nil {
		return nil, err
	}
	done = true
	p.rec = rec
	return p, nil
}

// probePidfd has package os check, on another thread, that pidfds work:
// it does so once per process, by a vfork of a child that exits, on the
// first os.FindProcess, which otherwise pays for it on the critical path
// (right after init is started, see startVfork).
func probePidfd() {
	pidfdProbe.Do(func() {
		go func() {
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Release()
			}
		}()
	})
}

var pidfdProbe sync.Once

// makeStateDir creates the container's state directory, which also claims
// its id (writeSpec fills it). On an error nothing of it remains.
func (r *Runtime) makeStateDir(id string) error {
	dir := r.dir(id)
	err := os.Mkdir(dir, 0o711)
	if errors.Is(err, os.ErrNotExist) {
		if err := r.makeRoot(); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o711)
	}
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return fmt.Errorf("create state dir: %w", err)
	}
	return nil
}

// makeRoot creates the runtime's root. State directories are trees of
// their own, each made and removed with its container: ext4 spreads such
// trees over its block groups (see topdir), a hint whose failure costs
// only speed.
func (r *Runtime) makeRoot() error {
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return fmt.Errorf("create root %s: %w", r.Root, err)
	}
	_ = topdir.Mark(r.Root)
	return nil
}

// writeSpec writes the state directory's copy of the spec. In place, not
// through a temporary file: the directory was made for this create, and
// nothing reads spec.json before state.json exists. spawn writes it while
// init starts: a new file costs ~20 µs to ~0.3 ms on ext4 without a
// journal, whose inode allocator skips every inode freed in the last
// minute.
func (r *Runtime) writeSpec(id string, raw []byte) error {
	if err := openat.WriteFile(filepath.Join(r.dir(id), specFile), raw, 0o600); err != nil {
		return fmt.Errorf("container %q: write %s: %w", id, specFile, err)
	}
	return nil
}

// spawn starts init and drives it through the sync protocol (see
// initproc.Msg) until it waits on the exec fifo.
//
// The state directory and the cgroup2 cgroup are made first (init is born
// in the latter, see cgroups.Entry); the state directory's files, the exec
// fifo and, for the stub, the cgroup v1 cgroups while init execs and
// starts up.
func (r *Runtime) spawn(rec *Record, raw []byte, o CreateOptions, undo *undoChain) (*Container, error) {
	spec := rec.Spec
	// The undo chain runs in reverse: the cgroup and the state directory
	// go after the process is gone (its kill is added once it exists),
	// and they are added here, before it, for that reason.
	stateDir := false
	undo.add(func() {
		if stateDir {
			r.removeStateDir(rec.ID)
		}
	})
	var cg cgroups.Manager
	undo.add(func() {
		if cg != nil {
			cg.Destroy()
		}
	})
	plan, err := planNamespaces(spec)
	if err != nil {
		return nil, err
	}
	lean, err := r.leanFor(spec, o, plan)
	if err != nil {
		return nil, err
	}
	// The stub's messages are whole programs and replies: a socket that
	// keeps their boundaries.
	sockType := unix.SOCK_STREAM
	if lean != nil {
		sockType = unix.SOCK_SEQPACKET
	}
	parentSock, childSock, err := socketPair(sockType)
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()
	var console *os.File
	if spec.Process != nil && spec.Process.Terminal {
		if console, err = dialConsole(o.ConsoleSocket); err != nil {
			return nil, err
		}
		defer console.Close()
	}
	stdio, closeNull, err := devNullStdio(o.Stdio)
	if err != nil {
		return nil, err
	}
	defer closeNull()
	// The state directory claims the id: a duplicate fails here, before
	// any cgroup of that id is touched.
	if err := r.makeStateDir(rec.ID); err != nil {
		return nil, err
	}
	stateDir = true
	// Init joins its cgroups itself where it can (cgroups.Entry): rest
	// are those the parent moves it into. Init is born in its cgroup2
	// cgroup, which exists before it; the stub writes itself into the v1
	// hierarchies through files it is sent later (leanConverse), so those
	// are made while it starts and the rootfs is set up: on a v1 host,
	// one mkdir or more per hierarchy (~0.7 ms in all here) off the start's
	// critical path.
	if cg, err = r.cgroupManager(rec); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	early := cgroups.All
	if lean != nil {
		early = cgroups.Unified
	}
	entry, err := r.openEntry(cg, early)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer entry.Close()
	rest := cgroups.All
	low := exeFloor(stdio, o.PreserveFDs, []*os.File{childSock, console})
	var exe string
	var releaseExe func()
	if lean != nil {
		exe, releaseExe, err = r.stubExe(low)
	} else {
		exe, releaseExe, err = r.initExe(r.Exe, low)
	}
	if err != nil {
		return nil, err
	}
	defer releaseExe()
	cmd := initCmd(exe, r.Version, stdio, o.PreserveFDs, childSock, console)
	if lean != nil {
		cmd = stubCmd(exe, stdio, o.PreserveFDs, childSock)
	}
	// Born in its cgroup2 cgroup (clone3 CLONE_INTO_CGROUP) where the
	// start allows it: not through the trampoline, nor from Go's fork
	// with CLONE_PARENT (clone3 takes that only with no exit signal, and
	// Go's sets SIGCHLD).
	cgroupFD := -1
	if entry != nil && entry.Unified != nil && !plan.needsTrampoline() && (plan.vforkable() || !o.CloneParent) {
		cgroupFD = int(entry.Unified.Fd())
		rest &^= cgroups.Unified
	}
	if plan.vforkable() {
		err = plan.startVfork(cmd, o.CloneParent, cgroupFD)
	} else {
		cmd.SysProcAttr = goSysProcAttr(plan, spec, o.CloneParent)
		if cgroupFD >= 0 {
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgroupFD
		}
		err = plan.start(cmd)
	}
	if err != nil {
		return nil, fmt.Errorf("start init: %w", err)
	}
	if o.Spawned != nil {
		o.Spawned(cmd.Process.Pid)
	}
	undo.add(func() { cmd.Process.Kill(); cmd.Wait() })
	childSock.Close()
	entry.Close()
	rec.Pid = cmd.Process.Pid
	var rs *rootSetup
	if lean != nil {
		rs = startRootSetup(&stub{cmd: cmd, sock: parentSock}, rec, plan.newCgroupNS, r.Procfs, r.Shared)
		// Before the kill above: the setup may still be waiting.
		undo.add(rs.abort)
	}
	if lean != nil && entry != nil {
		v1, err := r.openEntry(cg, cgroups.V1)
		if err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		defer v1.Close()
		lean.tasks = v1.Tasks
		rest &^= cgroups.V1
	}
	if r.BundleSpec {
		rec.SpecInBundle = true
	} else if err := r.writeSpec(rec.ID, raw); err != nil {
		return nil, err
	}
	fifo := filepath.Join(r.dir(rec.ID), fifoFile)
	if err := makeFifo(fifo, spec); err != nil {
		return nil, err
	}
	if rec.StartTime, _, err = procStat(rec.Pid); err != nil {
		return nil, fmt.Errorf("init pid %d: %w", rec.Pid, err)
	}
	// The cgroups are joined before init does anything: every process it
	// forks (hooks, the container) is then born inside them, and the
	// cgroup namespace that init unshares next is rooted there. The stub
	// joins the v1 hierarchies first thing in its first program
	// (joinSteps), after the limits below are in place.
	if err := applyCgroup(cg, rec.Pid, spec, rest); err != nil {
		return nil, err
	}
	if lean != nil {
		if err := r.leanConverse(rs, lean, rec, o, plan, cg, fifo); err != nil {
			return nil, err
		}
		return &Container{ID: rec.ID, Process: cmd.Process, cmd: cmd, rt: r, cg: cg}, nil
	}
	cfg := &initproc.Config{
		ID: rec.ID, Bundle: rec.Bundle, Spec: spec, FifoPath: fifo,
		State:        specs.State{Version: specs.Version, ID: rec.ID, Status: specs.StateCreating, Pid: rec.Pid, Bundle: rec.Bundle, Annotations: spec.Annotations},
		NoPivot:      o.NoPivot,
		NoNewKeyring: o.NoNewKeyring,
		PreserveFDs:  o.PreserveFDs,
		NewCgroupNS:  plan.newCgroupNS,
		InUserNS:     hasNS(spec, specs.UserNamespace),
		TimerSlack:   r.TimerSlack,
	}
	if console != nil {
		cfg.ConsoleFD = 3 + o.PreserveFDs + 1
	}
	// Once init has made the nodes, the device cgroup gets the spec's
	// own rules, before the hooks that may add to them.
	mounted := func() error { return finalDevices(cg, spec) }
	if err := r.converse(cmd, parentSock, cfg, mounted); err != nil {
		return nil, err
	}
	return &Container{ID: rec.ID, Process: cmd.Process, cmd: cmd, rt: r, cg: cg}, nil
}

// openEntry creates cg's cgroups and opens their entry, or returns nil
// when init must be moved in by Apply: a rootless runtime may be denied
// its cgroups, which rootlessCgroups.Apply tolerates.
func (r *Runtime) openEntry(cg cgroups.Manager, h cgroups.Hierarchies) (*cgroups.Entry, error) {
	if r.Rootless {
		return nil, nil
	}
	return cg.OpenEntry(h)
}

// goSysProcAttr is how Go's os/exec starts init in the plan's new
// namespaces, when startVfork cannot (see nsPlan.vforkable).
func goSysProcAttr(plan *nsPlan, spec *specs.Spec, cloneParent bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Cloneflags: plan.cloneflags,
		// A new session: init must not keep the runtime's controlling
		// terminal, where it could inject input (TIOCSTI).
		Setsid: true,
	}
	if plan.cloneflags&unix.CLONE_NEWUSER != 0 {
		a.UidMappings = idMaps(spec.Linux.UIDMappings)
		a.GidMappings = idMaps(spec.Linux.GIDMappings)
		// Setgroups stays allowed when we are root on the host: the
		// container's additionalGids need it. An unprivileged (rootless)
		// runtime may write a gid_map only with setgroups denied.
		privileged := os.Geteuid() == 0
		a.GidMappingsEnableSetgroups = privileged
		// The child keeps the runtime's host uid, which the new
		// namespace may not map: it must become the namespace's root
		// (setuid(0) inside it, right after the maps are written) to
		// hold capabilities there.
		a.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !privileged}
	}
	if cloneParent {
		a.Cloneflags |= unix.CLONE_PARENT
	}
	return a
}

// converse runs the parent's half of the sync protocol. mounted, if not
// nil, runs when init reports its mounts done, before the hooks.
func (r *Runtime) converse(cmd *exec.Cmd, sock *os.File, cfg *initproc.Config, mounted func() error) error {
	b, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("config for init: %w", err)
	}
	if err := initproc.WriteMsg(sock, initproc.MsgConfig, b); err != nil {
		return fmt.Errorf("send config to init: %w", initDied(cmd, err))
	}
	for {
		typ, payload, err := initproc.ReadMsg(sock)
		if err != nil {
			return fmt.Errorf("init: %w", initDied(cmd, err))
		}
		switch typ {
		case initproc.MsgMounted:
			if mounted != nil {
				if err := mounted(); err != nil {
					return err
				}
			}
			// Prestart (deprecated) and createRuntime hooks run in the
			// runtime's namespaces once the container's namespaces and
			// mounts exist, before pivot_root.
			h := cfg.Spec.Hooks
			if h != nil {
				// Prestart predates the "creating" status; runc and
				// its users expect "created" there.
				pre := cfg.State
				pre.Status = specs.StateCreated
				if err := hooks.Run("prestart", h.Prestart, &pre); err != nil {
					return err
				}
				if err := hooks.Run("createRuntime", h.CreateRuntime, &cfg.State); err != nil {
					return err
				}
			}
			if err := initproc.WriteMsg(sock, initproc.MsgContinue, nil); err != nil {
				return fmt.Errorf("init: %w", initDied(cmd, err))
			}
		case initproc.MsgReady:
			return nil
		case initproc.MsgError:
			return errors.New(string(payload))
		default:
			return fmt.Errorf("init: unexpected message %q", typ)
		}
	}
}

// initDied turns a broken sync socket into the reason init exited.
func initDied(cmd *exec.Cmd, err error) error {
	var ws syscall.WaitStatus
	if pid, werr := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil); werr == nil && pid > 0 {
		// Reaped here: make cmd.Wait in the undo chain not wait again.
		cmd.Process.Release()
		if ws.Signaled() {
			return fmt.Errorf("init killed by %v", ws.Signal())
		}
		return fmt.Errorf("init exited with status %d", ws.ExitStatus())
	}
	return err
}

// applyCgroup moves pid into the hierarchies h, the cgroups it did not
// join by itself, and sets the limits.
func applyCgroup(cg cgroups.Manager, pid int, spec *specs.Spec, h cgroups.Hierarchies) error {
	if err := cg.ApplyOnly(pid, h); err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	if err := cg.Set(withSpecDevices(withDefaultDevices(spec.Linux.Resources), spec.Linux.Devices)); err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	return nil
}

// finalDevices replaces the setup device rules (see withSpecDevices) with
// the spec's own plus the defaults, as runc has them: a node listed in
// linux.devices is usable only if linux.resources.devices allows it.
func finalDevices(cg cgroups.Manager, spec *specs.Spec) error {
	if !hasNodes(spec.Linux.Devices) {
		return nil // the setup rules were already the final ones
	}
	devs := withDefaultDevices(spec.Linux.Resources).Devices
	if err := cg.Set(&specs.LinuxResources{Devices: devs}); err != nil {
		return fmt.Errorf("cgroup: device rules: %w", err)
	}
	return nil
}

// defaultDevices are the device nodes every container gets (runtime-spec
// "Default Devices", plus the ptys): the device cgroup must allow them after
// the spec's own rules, or init could not even create /dev/null.
var defaultDevices = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // null
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // zero
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"}, // full
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"}, // random
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"}, // urandom
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"}, // tty
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"}, // ptmx
	{Allow: true, Type: "c", Major: i64(136), Minor: nil, Access: "rwm"},  // pts/*
}

func i64(v int64) *int64 { return &v }

// withDefaultDevices returns r with the default devices allowed after its
// own device rules (later rules win), without changing r.
func withDefaultDevices(r *specs.LinuxResources) *specs.LinuxResources {
	out := specs.LinuxResources{}
	if r != nil {
		out = *r
	}
	out.Devices = append(append([]specs.LinuxDeviceCgroup(nil), out.Devices...), defaultDevices...)
	return &out
}

// withSpecDevices also allows mknod of the nodes the spec asks to create
// (linux.devices), for the setup only: the cgroup is joined before init
// runs, and init's mknod of them is checked against it. Reading and
// writing them stays the spec's decision (finalDevices drops these rules
// once the nodes exist; runc never adds them).
func withSpecDevices(r *specs.LinuxResources, devs []specs.LinuxDevice) *specs.LinuxResources {
	for _, d := range devs {
		if typ, ok := nodeType(d); ok {
			r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: i64(d.Major), Minor: i64(d.Minor), Access: "m"})
		}
	}
	return r
}

// nodeType is the device cgroup type of a linux.devices entry ("p" has none).
func nodeType(d specs.LinuxDevice) (string, bool) {
	switch d.Type {
	case "c", "u":
		return "c", true
	case "b":
		return "b", true
	}
	return "", false
}

func hasNodes(devs []specs.LinuxDevice) bool {
	for _, d := range devs {
		if _, ok := nodeType(d); ok {
			return true
		}
	}
	return false
}

// initCmd builds the exec of init (see Runtime.Exe), passing the runtime's
// version if known (see initproc.Main). Child fds: 0-2 stdio, 3..3+n-1 the
// preserved fds, then the sync socket, then the console socket.
func initCmd(exe, version string, stdio Stdio, preserve int, sync, console *os.File) *exec.Cmd {
	cmd := &exec.Cmd{Path: exe, Args: []string{"estiba-runtime", initproc.Arg}}
	if version != "" {
		cmd.Args = append(cmd.Args, version)
	}
	// Every stream is set (devNullStdio): a nil *os.File in the
	// io.Reader/Writer fields would make os/exec close the child's fd
	// instead of giving it /dev/null (init's Go runtime would then open
	// /dev/null itself, racing the parent's devices cgroup setup: EPERM,
	// exit 2), and a nil interface would have os/exec open /dev/null at an
	// fd number exeFloor cannot know.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	for i := 0; i < preserve; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-fd"))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, sync)
	if console != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, console)
	}
	// init's own environment never reaches the container: the process
	// gets process.env, the hooks their own env.
	cmd.Env = []string{initproc.EnvSync + "=" + strconv.Itoa(3+preserve), initproc.GoDebug, initproc.GoMaxProcs}
	return cmd
}

func socketPair(typ int) (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

// dialConsole connects to the --console-socket, where the pty master goes.
// A plain socket, not package net's: linking net costs every runtime
// command its package initialization (~0.4 ms of each process start here),
// for one connect that only passes an fd.
func dialConsole(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("console socket: %w", &os.PathError{Op: "connect", Path: path, Err: err})
	}
	return os.NewFile(uintptr(fd), path), nil
}

// makeFifo creates the exec fifo, owned by the container's root so that
// init can still open it after entering a user namespace.
func makeFifo(path string, spec *specs.Spec) error {
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return fmt.Errorf("create exec fifo: %w", err)
	}
	uid, gid := hostID(spec.Linux.UIDMappings, 0), hostID(spec.Linux.GIDMappings, 0)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown exec fifo: %w", err)
	}
	// Writable by all: init opens it after switching to the container's
	// user, which may not be root. Opening it for writing only lets init
	// go on; the state directory (0711) keeps others from finding it.
	if err := os.Chmod(path, 0o622); err != nil {
		return fmt.Errorf("chmod exec fifo: %w", err)
	}
	return nil
}

// hostID maps a container id to the host through m (identity if no map).
func hostID(m []specs.LinuxIDMapping, id uint32) int {
	if len(m) == 0 {
		return int(id)
	}
	for _, e := range m {
		if id >= e.ContainerID && id < e.ContainerID+e.Size {
			return int(e.HostID + id - e.ContainerID)
		}
	}
	return -1
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, e := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)}
	}
	return out
}

func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// undoChain collects the steps that revert a half-done operation, run in
// reverse order on failure.
type undoChain struct{ fns []func() }

func (u *undoChain) add(f func()) { u.fns = append(u.fns, f) }

func (u *undoChain) run() {
	for i := len(u.fns) - 1; i >= 0; i-- {
		u.fns[i]()
	}
}

// lockedThread runs f on a fresh OS thread that is never returned to the Go
// scheduler: f may change the thread's namespaces, and Go ends a thread
// whose goroutine exits while locked.
func lockedThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- f()
	}()
	return <-errc
}
