// Package container is the OCI runtime's lifecycle library: create, start,
// state, kill, delete, exec, pause, resume and update of containers described
// by OCI bundles. The engine calls it in-process; cmd/estiba-runtime is a
// thin command line over it.
package container

import (
	"errors"
	"os"

	"github.com/estiba/estiba/runtime/cgroups"
	"github.com/estiba/estiba/runtime/procfs"
	"github.com/estiba/estiba/runtime/rootfs"
	"github.com/estiba/estiba/runtime/seccomp"
)

// Error classes; callers test them with errors.Is.
var (
	ErrNotExist = errors.New("container does not exist")
	ErrExist    = errors.New("container already exists")
	ErrInvalid  = errors.New("invalid argument")
	// ErrState: the operation is not allowed in the container's status.
	ErrState = errors.New("invalid container status")
	// ErrUnsupported: a valid request this runtime or host cannot honour.
	ErrUnsupported = errors.New("not supported")
)

// Runtime holds the roots all operations work under. The zero value is not
// usable: Root is required.
type Runtime struct {
	// Root holds one state directory per container (runc's --root).
	Root string
	// CgroupRoot is the cgroup filesystem root; empty means /sys/fs/cgroup.
	CgroupRoot string
	// Cgroups, if set, is the host's cgroup layout under CgroupRoot, read
	// once (a long-lived caller: the engine's spawner). Nil: each
	// operation reads it.
	Cgroups *cgroups.Host
	// Exe is the binary exec'd as the container's init: one whose main
	// calls initproc.Main when os.Args[1] is initproc.Arg, such as the
	// small cmd/estiba-init (see InitBeside). Empty means this process's
	// own executable. Either way init runs from a detached read-only
	// clone of it (see exe.go).
	Exe string
	// Stub is the init stub (cmd StubName, runtime/initstub), the lean
	// init of containers that need nothing else of one (see lean.go), run
	// from a sealed memfd copy (see stubExe). Empty: every container gets
	// Exe.
	Stub string
	// StubCache, if set, keeps that copy across creates (a long-lived
	// caller: the engine's spawner). Nil: each create copies the stub.
	StubCache *StubCache
	// Procfs, if set, is the procfs instance through which the runtime
	// writes containers' sysctls and oom_score_adj, kept across creates
	// (a long-lived caller). Nil: each create mounts its own.
	Procfs *procfs.Shared
	// Shared, if set, is the read-only directory tree that the stub's
	// containers' masked directories and read-only cgroup v1
	// /sys/fs/cgroup are bound from (rootfs.SharedDirs), kept across
	// creates (a long-lived caller). Nil: a tmpfs of each container's own
	// for each.
	Shared *rootfs.SharedDirs
	// Version, if set, is passed to init, which refuses to run from a
	// binary of another version (Exe may be a separate file).
	Version string
	// Rootless is runc's --rootless: cgroups that the (unprivileged)
	// caller may not create are skipped unless the spec sets limits (see
	// rootless.go).
	Rootless bool
	// Warn receives non-fatal problems (poststart/poststop hook failures).
	Warn func(msg string)
	// TimerSlack, if not 0, is the timer slack (ns) of container
	// processes, when this process runs with a wider one
	// (internal/timerslack): the slack of whoever started the runtime.
	TimerSlack uint64
	// Seccomp, if set, keeps the compiled filters of the stub's containers
	// across creates (a long-lived caller: the engine's spawner). Nil:
	// each create compiles its profile.
	Seccomp *seccomp.Cache
	// NoExecWait has Start return once init is released, without waiting
	// for its execve of the container's process (the engine: its own
	// users wait for nothing more, and the execve, ~1 ms of a static
	// binary's page faults, is then off the start's critical path). As
	// runc does, Start still waits when there are poststart hooks, which
	// the spec runs after that execve. An execve that fails is an exit
	// either way: init has been released, and Start cannot fail then.
	NoExecWait bool
	// BundleSpec keeps no copy of the spec in the state directory: the
	// bundle's config.json is the spec for as long as the container
	// exists, and update rewrites it there. For a caller that owns the
	// bundle and leaves its config.json alone until the container is
	// deleted (the engine, which writes it before each create). A copy is
	// what runc keeps, as the bundle may change after create; Docker's
	// seccomp profile makes it 11 KiB, three pages of tmpfs for as long
	// as the container lives where the state directory is under /run.
	BundleSpec bool
}

// Stdio are the container process's standard streams; nil means /dev/null.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// CreateOptions are the runtime's choices that the bundle does not carry.
type CreateOptions struct {
	Stdio
	// PidFile, if set, receives the init pid once the container is created.
	PidFile string
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master when process.terminal is set.
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	// PreserveFDs is the number of fds from 3 on passed to the container.
	PreserveFDs int
	// CloneParent makes init a child of the caller's parent, which then
	// reaps it: a small helper process can start inits for a big
	// supervisor. Go's fork of a new user namespace copies the forker's
	// address space, and its cost grew with the supervisor's memory; the
	// vfork path (vfork.go) copies nothing, but cannot name a grandparent
	// as init's parent: it orphans init, which the kernel gives to the
	// nearest child subreaper (PR_SET_CHILD_SUBREAPER). With a new user
	// namespace the caller's parent must therefore be a subreaper (the
	// engine's monitor is); Create checks that init went to it.
	CloneParent bool
	// Spawned, if set, is called with init's pid right after the fork.
	// With CloneParent the caller cannot reap a failed init itself: its
	// parent needs the pid.
	Spawned func(pid int)
}

func (r *Runtime) warn(format string) {
	if r.Warn != nil {
		r.Warn(format)
	}
}

func (r *Runtime) cgroupManager(rec *Record) (cgroups.Manager, error) {
	path := rec.CgroupsPath
	root := r.CgroupRoot
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	newManager := cgroups.New
	if r.Cgroups != nil {
		newManager = r.Cgroups.New
	}
	m, err := newManager(cgroups.Config{Path: path, ID: rec.ID, Root: root})
	if err != nil || !r.Rootless {
		return m, err
	}
	return &rootlessCgroups{Manager: m}, nil
}
