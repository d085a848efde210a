// Package initproc is the container's init process: what the runtime binary
// does when the runtime re-execs it as "init" inside the new namespaces, up
// to the execve of the container's process. Its counterpart, the parent
// side, is runtime/container.
package initproc

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Arg is os.Args[1] of the re-exec'd init; EnvSync names the env variable
// holding the sync socket's fd number.
const (
	Arg     = "init"
	EnvSync = "_ESTIBA_SYNC_FD"
)

// GoDebug is the environment entry init runs with. Go (1.25+) otherwise
// opens its cgroup's CPU limit files (cpu.max, or cpu.cfs_quota_us and
// cpu.cfs_period_us) at startup to size GOMAXPROCS and keeps them open to
// follow changes: a created init would hold host cgroup files that a
// process exec'd into the container could reopen for writing through
// /proc/1/fd and lift its own CPU limit. containermaxprocs=0 makes the Go
// runtime close them right after its one read at startup, before main;
// updatemaxprocs=0 stops the periodic GOMAXPROCS updates.
const GoDebug = "GODEBUG=containermaxprocs=0,updatemaxprocs=0"

// Config is everything init needs, sent by the parent over the sync socket
// once the child is in its cgroup.
type Config struct {
	ID     string      `json:"id"`
	Bundle string      `json:"bundle"`
	Spec   *specs.Spec `json:"spec"`
	// State is the container state at creation (pid filled in) that the
	// createContainer and startContainer hooks read on stdin.
	State specs.State `json:"state"`
	// FifoPath is the exec fifo init blocks on until start.
	FifoPath string `json:"fifoPath"`
	// Exec is set for `exec`: join an existing container, run Process.
	Exec bool `json:"exec,omitempty"`
	// Process overrides Spec.Process for exec.
	Process *specs.Process `json:"process,omitempty"`

	NoPivot      bool `json:"noPivot,omitempty"`
	NoNewKeyring bool `json:"noNewKeyring,omitempty"`
	// PreserveFDs fds from 3 on are kept open in the container process.
	PreserveFDs int `json:"preserveFds,omitempty"`
	// ConsoleFD is the child's fd of the --console-socket connection, or 0.
	ConsoleFD int `json:"consoleFd,omitempty"`
	// NewCgroupNS: init unshares the cgroup namespace itself, after the
	// parent has moved it into the container's cgroup (see container.Create).
	NewCgroupNS bool `json:"newCgroupNs,omitempty"`
	// MountNSFD, for exec, is the child's fd of the container's mount
	// namespace, joined after the runtime binary was exec'd.
	MountNSFD int `json:"mountNsFd,omitempty"`
	// InUserNS: the container has its own user namespace.
	InUserNS bool `json:"inUserNs,omitempty"`
}

// Message types over the sync socket. The exchange is strictly alternating:
//
//	parent → child  config        (Config)
//	child  → parent mounted       rootfs is set up, not pivoted: run the
//	                              prestart and createRuntime hooks now
//	parent → child  continue
//	child  → parent ready | error (then init blocks on the exec fifo)
const (
	MsgConfig   = "config"
	MsgMounted  = "mounted"
	MsgContinue = "continue"
	MsgReady    = "ready"
	MsgError    = "error"
)

// Msg is one message over the sync socket.
type Msg struct {
	Type   string  `json:"type"`
	Error  string  `json:"error,omitempty"`
	Config *Config `json:"config,omitempty"`
}
