package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/estiba/estiba/engine/api"
	detachkeys "github.com/estiba/estiba/engine/api/detach"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/engine/logs"
	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/engine/specgen"
	"github.com/estiba/estiba/engine/store"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Logs writes the container's log: Docker's multiplexed frames, or raw
// with a tty.
func (d *Daemon) Logs(ctx context.Context, ref string, opts api.LogOptions, w io.Writer) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	_, files := d.logOpts(c)
	ro := logs.ReadOptions{Tail: opts.Tail, Since: opts.Since, Until: opts.Until, Follow: opts.Follow}
	if opts.Follow {
		if c.State.Status != store.StatusRunning && c.State.Status != store.StatusPaused && c.State.Status != store.StatusRestarting {
			ro.Follow = false
		} else {
			wt := d.waitFor(c.ID, "not-running")
			defer d.dropWaiter(c.ID, wt)
			done := make(chan struct{})
			go func() {
				select {
				case <-wt.ch:
				case <-ctx.Done():
				}
				close(done)
			}()
			ro.Done = done
		}
	}
	return logs.Read(ctx, d.logPath(c.ID), files, ro, func(e logs.Entry) error {
		if (e.Stream == "stdout" && !opts.Stdout) || (e.Stream == "stderr" && !opts.Stderr) {
			return nil
		}
		line := e.Log
		if opts.Timestamps {
			line = e.Time.Format(time.RFC3339Nano) + " " + line
		}
		if c.Config.Tty {
			_, err := io.WriteString(w, line)
			return err
		}
		stream := byte(1)
		if e.Stream == "stderr" {
			stream = 2
		}
		return writeFrame(w, stream, []byte(line))
	})
}

func writeFrame(w io.Writer, stream byte, b []byte) error {
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// Attach connects conn to the container's stdio through the monitor.
func (d *Daemon) Attach(ctx context.Context, ref string, opts api.AttachOptions, conn io.ReadWriteCloser) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	if opts.Stdin && !c.Config.OpenStdin {
		opts.Stdin = false
	}
	if opts.Logs {
		// Docker's logs=1: what the container wrote so far, then (with
		// stream=1) what it writes from now on.
		lo := api.LogOptions{Stdout: opts.Stdout, Stderr: opts.Stderr, Tail: -1}
		if err := d.Logs(ctx, c.ID, lo, conn); err != nil {
			return fmt.Errorf("attach %s: logs: %w", c.Name, err)
		}
	}
	if !opts.Stream {
		return nil
	}
	mc, _, err := d.mon.Dial(context.Background(), &monitor.Request{Op: monitor.OpAttach, ID: c.ID, Tty: c.Config.Tty,
		Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr})
	if err != nil {
		return fmt.Errorf("attach %s: %w", c.Name, err)
	}
	d.events.container("attach", c)
	var keys []byte
	if opts.Stdin {
		keys = opts.DetachKeys
	}
	if proxy(conn, mc, keys) {
		d.events.container("detach", c)
	}
	return nil
}

// proxy copies client↔monitor until the monitor's side ends (the process
// exited) or the client sends the detach keys (then it reports true); the
// client's EOF on stdin is passed on as a half-close. The caller closes
// the client connection: for an exec, only once the exit code is
// recorded, since the CLI asks for it as soon as it sees EOF.
func proxy(client io.ReadWriteCloser, mon net.Conn, keys []byte) bool {
	defer mon.Close()
	var detached atomic.Bool
	go func() {
		var in io.Reader = client
		if len(keys) > 0 {
			in = detachkeys.NewReader(client, keys)
		}
		_, err := io.Copy(mon, in)
		if errors.Is(err, detachkeys.ErrDetached) {
			// The process keeps its stdin: only this attachment ends.
			detached.Store(true)
			mon.Close()
			return
		}
		if cw, ok := mon.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	io.Copy(client, mon)
	return detached.Load()
}

// Resize sets the container's terminal size.
func (d *Daemon) Resize(ctx context.Context, ref string, h, w uint16) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	if _, err := d.mon.Call(ctx, &monitor.Request{Op: monitor.OpResize, ID: c.ID, Height: h, Width: w}); err != nil {
		return fmt.Errorf("resize %s: %v: %w", c.Name, err, errdefs.ErrConflict)
	}
	return nil
}

type execRecord struct {
	mu          sync.Mutex
	id          string
	containerID string
	cfg         types.ExecConfig
	running     bool
	started     bool
	exitCode    int
	pid         int
	done        chan struct{}
}

// ExecCreate records an exec for a running container.
func (d *Daemon) ExecCreate(ctx context.Context, ref string, cfg *types.ExecConfig) (string, error) {
	c, err := d.get(ref)
	if err != nil {
		return "", err
	}
	if c.State.Status != store.StatusRunning {
		return "", fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	e := &execRecord{id: newID(), containerID: c.ID, cfg: *cfg, done: make(chan struct{})}
	d.mu.Lock()
	d.execs[e.id] = e
	d.mu.Unlock()
	d.events.container("exec_create: "+joinArgs(cfg.Cmd), c)
	return e.id, nil
}

func (d *Daemon) exec(id string) (*execRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.execs[id]
	if e == nil {
		return nil, fmt.Errorf("no such exec instance: %s: %w", id, errdefs.ErrNotFound)
	}
	return e, nil
}

// ExecStart runs the exec with the container's process settings (spec
// read back from its bundle) overridden by the exec's.
func (d *Daemon) ExecStart(ctx context.Context, execID string, detach bool, conn io.ReadWriteCloser) error {
	e, err := d.exec(execID)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return fmt.Errorf("exec %s already started: %w", execID, errdefs.ErrConflict)
	}
	e.started, e.running = true, true
	e.mu.Unlock()
	c, err := d.store.Get(e.containerID)
	if err != nil {
		return err
	}
	p, err := d.execProcess(c, &e.cfg)
	if err != nil {
		return err
	}
	attach := !detach && conn != nil
	req := &monitor.Request{Op: monitor.OpExec, ID: c.ID, ExecID: e.id, Process: p,
		Stdin: attach && e.cfg.AttachStdin, Stdout: attach && e.cfg.AttachStdout, Stderr: attach && e.cfg.AttachStderr}
	mc, resp, err := d.mon.Dial(context.Background(), req)
	if err != nil {
		e.mu.Lock()
		e.running, e.exitCode = false, 126
		e.mu.Unlock()
		close(e.done)
		return fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	e.mu.Lock()
	e.pid = resp.Pid
	e.mu.Unlock()
	d.events.container("exec_start: "+joinArgs(e.cfg.Cmd), c)
	if !req.Stdin && !req.Stdout && !req.Stderr {
		mc.Close()
		return nil
	}
	var keys []byte
	if req.Stdin {
		// Validated at exec create.
		keys, _ = detachkeys.Parse(e.cfg.DetachKeys)
	}
	if proxy(conn, mc, keys) {
		return nil
	}
	// The CLI inspects the exec for its exit code as soon as the stream
	// ends: hold the stream until the exit is recorded.
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
	}
	return nil
}

func (d *Daemon) execProcess(c *store.Container, cfg *types.ExecConfig) (*specs.Process, error) {
	spec, err := d.readSpec(c.ID)
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.Env = specgen.MergeEnv(p.Env, cfg.Env)
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		// The rootfs is mounted only in the container's namespace while
		// it runs (see start): read it there.
		u, err := specgen.ResolveUser(fmt.Sprintf("/proc/%d/root", c.State.Pid), cfg.User)
		if err != nil {
			return nil, err
		}
		p.User = u
	}
	if cfg.Privileged {
		return nil, fmt.Errorf("privileged exec is not supported: %w", errdefs.ErrNotImplemented)
	}
	return &p, nil
}

func (d *Daemon) execExited(st monitor.Status) {
	e, err := d.exec(st.ExecID)
	if err != nil {
		return
	}
	e.mu.Lock()
	e.running, e.exitCode = false, st.ExitCode
	e.mu.Unlock()
	select {
	case <-e.done:
	default:
		close(e.done)
	}
	if c, err := d.store.Get(e.containerID); err == nil {
		d.events.container("exec_die", c)
	}
	// Keep finished execs a while for inspect, then drop them.
	time.AfterFunc(5*time.Minute, func() {
		d.mu.Lock()
		delete(d.execs, st.ExecID)
		d.mu.Unlock()
	})
}

// ExecInspect reports an exec.
func (d *Daemon) ExecInspect(ctx context.Context, execID string) (*types.ExecInspect, error) {
	e, err := d.exec(execID)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return &types.ExecInspect{ID: e.id, ContainerID: e.containerID, Running: e.running, ExitCode: e.exitCode, Pid: e.pid}, nil
}

// ExecResize sets an exec's terminal size.
func (d *Daemon) ExecResize(ctx context.Context, execID string, h, w uint16) error {
	e, err := d.exec(execID)
	if err != nil {
		return err
	}
	if _, err := d.mon.Call(ctx, &monitor.Request{Op: monitor.OpResize, ID: e.containerID, ExecID: e.id, Height: h, Width: w}); err != nil {
		return fmt.Errorf("resize exec: %v: %w", err, errdefs.ErrConflict)
	}
	return nil
}

func joinArgs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

var _ api.Execs = (*Daemon)(nil)
