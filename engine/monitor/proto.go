// Package monitor is estiba-monitor: ONE small long-lived host-wide process
// that is the parent (child subreaper) of every container, holds their
// stdio pipes, writes their json-file logs and records their exit statuses.
// The daemon asks it to start, signal, pause and exec over a unix socket,
// and can be killed -9 and restarted at any moment: containers keep
// running, their output keeps flowing into the logs, and exits that happen
// while the daemon is down wait in the monitor (and in exit files) until
// the daemon reconnects and applies them.
//
// Why not one shim per container (containerd-shim 2.5 MB, conmon 352 KB):
// density. The monitor's cost per container is two pipes, a pidfd and three
// goroutines parked in the netpoller (~10 KB).
package monitor

import (
	"context"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is the slice of the OCI runtime the monitor drives, shaped after
// runc's commands. The monitor process calls it in-process, so container
// inits become the monitor's children.
type Runtime interface {
	// Create sets up the container from bundle/config.json with stdio as
	// its process's stdin/stdout/stderr and returns the init's pid, blocked
	// before the user process until Start. When spec.process.terminal is
	// set, stdio is empty: the runtime allocates the pty inside the
	// container and returns its master as console. The init is a child of
	// the caller; the runtime must not reap it: the monitor does.
	Create(ctx context.Context, id, bundle string, stdio Stdio) (pid int, console *os.File, err error)
	// Start lets the init exec the user process.
	Start(ctx context.Context, id string) error
	// Exec runs p inside the running container (console as for Create,
	// when p.Terminal); its pid is a child of the caller, which reaps it.
	Exec(ctx context.Context, id string, p *specs.Process, stdio Stdio) (pid int, console *os.File, err error)
	// Kill signals the init (all: every process of the container).
	Kill(ctx context.Context, id string, sig int, all bool) error
	// Pause and Resume freeze and thaw the container's cgroup.
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Delete removes what Create made (cgroup, state); the init is dead.
	Delete(ctx context.Context, id string) error
	// Pids lists the container's processes (host pids), for top.
	Pids(ctx context.Context, id string) ([]int, error)
}

// Stdio are the fds given to a container process.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
	// Terminal: the process has a terminal (the bundle's process.terminal,
	// which the caller wrote); the runtime then hands back its pty master,
	// and the files above are not used.
	Terminal bool
}

// Request is one line from the daemon.
type Request struct {
	Op     string `json:"op"`
	ID     string `json:"id,omitempty"`
	ExecID string `json:"exec,omitempty"`

	// start
	Bundle      string `json:"bundle,omitempty"`
	LogPath     string `json:"logPath,omitempty"`
	LogMaxSize  int64  `json:"logMaxSize,omitempty"`
	LogMaxFiles int    `json:"logMaxFiles,omitempty"`
	Tty         bool   `json:"tty,omitempty"`
	OpenStdin   bool   `json:"openStdin,omitempty"`
	StdinOnce   bool   `json:"stdinOnce,omitempty"`
	// Hold: create only; the init waits until OpRelease (the daemon
	// plumbs the network in between).
	Hold bool `json:"hold,omitempty"`
	// Created asks for a first answer as soon as the init is forked
	// (Response.Created, with its pid), before the one that says it
	// started: the daemon records the run meanwhile. Not with Hold, whose
	// one answer comes at that point anyway.
	Created bool `json:"created,omitempty"`
	// AutoRemove: the daemon removes the container at its exit. The
	// monitor then holds the run's mount namespace (see holdMountNS), so
	// that the exit, and the removal after it, do not wait for the
	// kernel's teardown of the container's mounts. A monitor from before
	// ignores it.
	AutoRemove bool `json:"autoRemove,omitempty"`

	// exec
	Process *specs.Process `json:"process,omitempty"`

	// kill
	Signal int  `json:"signal,omitempty"`
	All    bool `json:"all,omitempty"`

	// attach (and exec with attach)
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`

	// resize
	Height uint16 `json:"h,omitempty"`
	Width  uint16 `json:"w,omitempty"`
}

// Ops.
const (
	OpStart     = "start"     // create+start the container (create only with Hold)
	OpRelease   = "release"   // start a container created with Hold
	OpExec      = "exec"      // run a process in it (then stream if attaching)
	OpAttach    = "attach"    // then stream
	OpKill      = "kill"      // signal
	OpPause     = "pause"     //
	OpResume    = "resume"    //
	OpDelete    = "delete"    // removal: wait for the runtime delete after the exit, then forget
	OpResize    = "resize"    // pty size
	OpList      = "list"      // every container the monitor knows
	OpForget    = "forget"    // the daemon applied an exit: drop it
	OpSubscribe = "subscribe" // then exit events as JSON lines
	OpPids      = "pids"      // processes, for top
)

// Response is the answer line.
type Response struct {
	Error  string   `json:"error,omitempty"`
	Pid    int      `json:"pid,omitempty"`
	Pids   []int    `json:"pids,omitempty"`
	States []Status `json:"states,omitempty"`
	// Reuse says the monitor reads a next request on this connection
	// (monitors before it closed it after each answer).
	Reuse bool `json:"reuse,omitempty"`
	// Created marks the first of a start's two answers (Request.Created):
	// the init exists, with Pid; the answer to the start follows. Monitors
	// before it send only that one.
	Created bool `json:"created,omitempty"`
}

// Status is a container's (or exec's) process state; subscribers get one
// per exit.
type Status struct {
	ID       string    `json:"id"`
	ExecID   string    `json:"exec,omitempty"`
	Pid      int       `json:"pid"`
	Running  bool      `json:"running"`
	ExitCode int       `json:"exitCode"`
	ExitedAt time.Time `json:"exitedAt,omitzero"`
}
