// Package ocirt adapts estiba's in-process OCI runtime (runtime/container)
// to the monitor's Runtime interface: it hands the monitor the init's pid
// instead of waiting for it, and receives the pty master of terminal
// containers over a console socket, as runc's callers do.
package ocirt

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/runtime/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Runtime wraps a container.Runtime.
type Runtime struct {
	RT *container.Runtime
	// ConsoleDir holds the short-lived console sockets.
	ConsoleDir string

	// created holds the containers Create made until Start or Delete:
	// Start then uses the record Create already holds instead of reading
	// and decoding state.json again.
	mu      sync.Mutex
	created map[string]*container.Container
}

func (r *Runtime) keep(c *container.Container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.created == nil {
		r.created = make(map[string]*container.Container)
	}
	r.created[c.ID] = c
}

// take removes and returns the container Create made under id, if any.
func (r *Runtime) take(id string) *container.Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.created[id]
	delete(r.created, id)
	return c
}

var _ monitor.Runtime = (*Runtime)(nil)

// Create creates the container; its init is our child, reaped by the
// monitor (the Container's own Wait is never called: Release drops the
// pidfd the os package holds without reaping).
func (r *Runtime) Create(ctx context.Context, id, bundle string, stdio monitor.Stdio) (int, *os.File, error) {
	pid, master, c, err := r.create(id, bundle, stdio, nil)
	if err != nil {
		return pid, nil, err
	}
	r.keep(c)
	return pid, master, nil
}

// create runs the runtime's Create, with the pty master of a terminal
// container. With spawned set, init becomes a child of our parent
// (CLONE_PARENT), spawned gets its pid right after the fork, and the pid is
// returned even on an error: the parent must reap it.
func (r *Runtime) create(id, bundle string, stdio monitor.Stdio, spawned func(pid int)) (int, *os.File, *container.Container, error) {
	// The caller wrote the bundle and says whether it has a terminal:
	// reading config.json for it cost a read and decode of the spec (whose
	// seccomp profile makes it large) besides the runtime's own, per start.
	terminal := stdio.Terminal
	var c *container.Container
	forked := 0
	opts := container.CreateOptions{Stdio: files(stdio), CloneParent: spawned != nil}
	if spawned != nil {
		opts.Spawned = func(pid int) { forked = pid; spawned(pid) }
	}
	pid, master, err := r.withConsole(id, terminal, func(sock string) (*container.Container, error) {
		var cerr error
		o := opts
		o.ConsoleSocket = sock
		c, cerr = r.RT.Create(id, bundle, o)
		return c, cerr
	}, func(int) { r.RT.Kill(id, unix.SIGKILL, true) })
	if pid == 0 {
		pid = forked
	}
	return pid, master, c, err
}

// files are the process's standard streams in the runtime's terms.
func files(s monitor.Stdio) container.Stdio {
	return container.Stdio{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr}
}

// Start starts it.
func (r *Runtime) Start(ctx context.Context, id string) error {
	if c := r.take(id); c != nil {
		return c.Start()
	}
	return r.RT.Start(id)
}

// Exec runs p in it.
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, stdio monitor.Stdio) (int, *os.File, error) {
	return r.withConsole(id+"-exec", p.Terminal, func(sock string) (*container.Container, error) {
		return r.RT.Exec(id, p, container.ExecOptions{Stdio: files(stdio), ConsoleSocket: sock})
	}, func(pid int) { unix.Kill(pid, unix.SIGKILL) })
}

// withConsole runs start (a create or an exec), first listening on a
// console socket named after name when terminal is set, and returns the
// process's pid and, with a terminal, the pty master the runtime sent. If
// the master never arrives, kill ends the process: without its terminal it
// would hang.
func (r *Runtime) withConsole(name string, terminal bool, start func(sock string) (*container.Container, error), kill func(pid int)) (int, *os.File, error) {
	var console *consoleSocket
	var sock string
	if terminal {
		var err error
		if console, err = r.listenConsole(name); err != nil {
			return 0, nil, err
		}
		defer console.close()
		sock = console.path
	}
	c, err := start(sock)
	if err != nil {
		return 0, nil, err
	}
	pid := c.Process.Pid
	c.Process.Release()
	if console == nil {
		return pid, nil, nil
	}
	master, err := console.receive()
	if err != nil {
		kill(pid)
		return pid, nil, err
	}
	return pid, master, nil
}

// Kill signals it.
func (r *Runtime) Kill(ctx context.Context, id string, sig int, all bool) error {
	return r.RT.Kill(id, unix.Signal(sig), all)
}

// Pause freezes it.
func (r *Runtime) Pause(ctx context.Context, id string) error { return r.RT.Pause(id) }

// Resume thaws it.
func (r *Runtime) Resume(ctx context.Context, id string) error { return r.RT.Resume(id) }

// Delete removes its runtime state; force, since the init is already dead
// and reaped by the monitor.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	r.take(id)
	return r.RT.Delete(id, true)
}

// Pids lists its processes.
func (r *Runtime) Pids(ctx context.Context, id string) ([]int, error) { return r.RT.Pids(id) }

type consoleSocket struct {
	path string
	l    *net.UnixListener
}

func (r *Runtime) listenConsole(id string) (*consoleSocket, error) {
	if err := os.MkdirAll(r.ConsoleDir, 0o700); err != nil {
		return nil, fmt.Errorf("console dir: %w", err)
	}
	path := filepath.Join(r.ConsoleDir, id[:min(len(id), 12)]+fmt.Sprintf("-%d.sock", os.Getpid()))
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleSocket{path: path, l: l}, nil
}

func (c *consoleSocket) close() {
	c.l.Close()
	os.Remove(c.path)
}

// receive accepts the runtime's connection and takes the pty master from
// its SCM_RIGHTS message.
func (c *consoleSocket) receive() (*os.File, error) {
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console accept: %w", err)
	}
	defer conn.Close()
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("console receive: %w", err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("console receive: no control message")
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("console receive: no fd")
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}
