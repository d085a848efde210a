package ocirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"

	"github.com/estiba/estiba/engine/monitor"
	"golang.org/x/sys/unix"
)

// Spawner is the monitor's Runtime when container inits are forked by a
// helper process: Create goes to the helper, every other call runs
// in-process (they fork nothing).
//
// Why: a new user namespace (--userns=auto, the default) used to rule out
// vfork, since the parent writes the id maps while the child waits, so each
// Create was a full fork of the forking process. Forked by the monitor, that
// copied the monitor's page tables and write-protected its memory, which
// grows with every container it supervises: each start got slower as N
// grew (31 ms of monitor CPU per start at 25 containers, 68 ms at 300).
// The helper's memory stays small and constant. On amd64 the runtime now
// starts such an init with vforks (runtime/container/vfork.go), which copy
// nothing; the inits still reach the monitor, by CLONE_PARENT or, with a
// new user namespace, by being orphaned to the monitor, a child subreaper.
type Spawner struct {
	*Runtime
	// Command returns the helper's command (ServeSpawner on fd 3). The
	// helper is started on the first Create and again if it dies.
	Command func() *exec.Cmd

	mu      sync.Mutex // guards the fields below and serializes sends
	conn    *net.UnixConn
	helper  chan struct{} // closed when the helper has exited
	seq     uint64
	pending map[uint64]chan spawnReply
}

var _ monitor.Runtime = (*Spawner)(nil)

// Close stops the helper (it exits on EOF) and waits for it; a later
// Create starts another.
func (s *Spawner) Close() error {
	s.mu.Lock()
	conn, exited := s.conn, s.helper
	s.conn = nil
	s.mu.Unlock()
	if conn == nil {
		return nil
	}
	err := conn.Close()
	<-exited
	return err
}

// spawnRequest travels with the non-nil stdio fds (in this order) as
// SCM_RIGHTS; Has says which of stdin, stdout, stderr they are (bits 0-2).
type spawnRequest struct {
	Seq    uint64 `json:"seq"`
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Has    int    `json:"has"`
	Tty    bool   `json:"tty,omitempty"`
}

// spawnReply carries the pty master as SCM_RIGHTS when Console is set. Pid
// is set on an error too once init was forked: the monitor reaps it.
type spawnReply struct {
	Seq uint64 `json:"seq"`
	// Spawned comes first, as soon as init is forked: the monitor then
	// watches the pid, to reap it if it dies before the final answer.
	Spawned bool   `json:"spawned,omitempty"`
	Pid     int    `json:"pid"`
	Console bool   `json:"console,omitempty"`
	Error   string `json:"error,omitempty"`
	console *os.File
}

// Create asks the helper to create the container.
func (s *Spawner) Create(ctx context.Context, id, bundle string, stdio monitor.Stdio) (int, *os.File, error) {
	return s.CreateSpawned(ctx, id, bundle, stdio, nil)
}

// CreateSpawned is Create that also tells spawned the init's pid as soon
// as it is forked, while the helper goes on setting the container up.
func (s *Spawner) CreateSpawned(ctx context.Context, id, bundle string, stdio monitor.Stdio, spawned func(pid int)) (int, *os.File, error) {
	req := spawnRequest{ID: id, Bundle: bundle, Tty: stdio.Terminal}
	var fds []int
	for i, f := range []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
		if f != nil {
			req.Has |= 1 << i
			fds = append(fds, int(f.Fd()))
		}
	}
	ch := make(chan spawnReply, 2)
	if err := s.send(&req, fds, ch); err != nil {
		return 0, nil, err
	}
	// No ctx abort: once sent, the helper may fork, and only its answers
	// tell which pid to reap.
	var died <-chan struct{}
	var pidfd *os.File
	defer func() {
		if pidfd != nil {
			pidfd.Close()
		}
	}()
	pid, reaped := 0, false
	for {
		var r spawnReply
		select {
		case r = <-ch:
		case <-died:
			// Init died while the helper was still creating it: reap it
			// now, since the helper's undo cannot remove its cgroup
			// while it is a zombie. Unless the answer came meanwhile and
			// is a success: then it died just after, and the monitor's
			// wait reaps it as any exit.
			select {
			case r = <-ch:
			default:
				unix.Wait4(pid, nil, unix.WNOHANG, nil)
				reaped, died = true, nil
				continue
			}
		}
		if r.Spawned {
			pid = r.Pid
			if pidfd, died = watchExit(pid); died == nil {
				pidfd = nil
			}
			if spawned != nil {
				spawned(pid)
			}
			continue
		}
		if r.Error == "" {
			return r.Pid, r.console, nil
		}
		if reaped {
			// The runtime's state, if Create got that far (a console
			// that never came), goes here: we return no pid to reap.
			s.Runtime.RT.Delete(id, true)
			return 0, nil, errors.New(r.Error)
		}
		return r.Pid, nil, errors.New(r.Error)
	}
}

// watchExit returns a pidfd of pid and a channel closed once pid has
// exited (without reaping it); closing the pidfd ends the watch.
func watchExit(pid int) (*os.File, <-chan struct{}) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, nil
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil
	}
	died := make(chan struct{})
	go func() {
		// A pidfd turns readable when its process exits.
		if rc.Read(func(uintptr) bool { return exited(fd) }) == nil {
			close(died)
		}
	}()
	return f, died
}

func exited(pidfd int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo != 0
}

func (s *Spawner) send(req *spawnRequest, fds []int, ch chan spawnReply) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		if err := s.startHelper(); err != nil {
			return err
		}
	}
	s.seq++
	req.Seq = s.seq
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := s.conn.WriteMsgUnix(b, oob, nil); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("spawner: %w", err)
	}
	s.pending[req.Seq] = ch
	return nil
}

// startHelper starts the helper with one end of a SOCK_SEQPACKET pair
// (each message whole, with its fds). Preconditions: s.mu is held.
func (s *Spawner) startHelper() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("spawner socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "spawner"), os.NewFile(uintptr(fds[1]), "spawner")
	defer theirs.Close()
	defer ours.Close()
	cmd := s.Command()
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start spawner: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c, err := net.FileConn(ours)
	if err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("spawner socket: %w", err)
	}
	conn := c.(*net.UnixConn)
	s.conn, s.helper, s.pending = conn, exited, map[uint64]chan spawnReply{}
	go s.readReplies(conn, s.pending)
	return nil
}

// readReplies hands each answer to its caller; when the helper goes away
// every pending Create fails and the next one starts a new helper.
func (s *Spawner) readReplies(conn *net.UnixConn, pending map[uint64]chan spawnReply) {
	buf := make([]byte, 64*1024)
	oob := make([]byte, unix.CmsgSpace(4))
	var err error
	for {
		var r spawnReply
		var fds []int
		if fds, err = readMsg(conn, buf, oob, &r); err != nil {
			break
		}
		if len(fds) > 0 {
			r.console = os.NewFile(uintptr(fds[0]), "pty-master")
			for _, fd := range fds[1:] {
				unix.Close(fd)
			}
		}
		s.mu.Lock()
		ch := pending[r.Seq]
		if !r.Spawned {
			delete(pending, r.Seq)
		}
		s.mu.Unlock()
		if ch != nil {
			ch <- r
		} else if r.console != nil {
			r.console.Close()
		}
	}
	s.mu.Lock()
	if s.conn == conn {
		s.conn = nil
	}
	conn.Close()
	for seq, ch := range pending {
		delete(pending, seq)
		ch <- spawnReply{Error: fmt.Sprintf("spawner: %v", err)}
	}
	s.mu.Unlock()
}

// readMsg reads one message into v and returns the fds it carried.
func readMsg(conn *net.UnixConn, buf, oob []byte, v any) ([]int, error) {
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("control message: %w", err)
		}
		for i := range msgs {
			if rights, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, rights...)
			}
		}
	}
	if n == 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, io.EOF
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("decode: %w", err)
	}
	return fds, nil
}

// ServeSpawner is the helper's side: it creates containers with rt, each
// init a child of our parent (the monitor), until the socket f closes (the
// monitor is gone). Creates run concurrently.
func ServeSpawner(f *os.File, rt *Runtime) error {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("spawner socket: %w", err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	var wmu sync.Mutex // one reply at a time
	buf := make([]byte, 64*1024)
	oob := make([]byte, unix.CmsgSpace(3*4))
	for {
		var req spawnRequest
		fds, err := readMsg(conn, buf, oob, &req)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		go func() {
			r := spawnReply{Seq: req.Seq}
			stdio, err := stdioOf(req.Has, fds)
			stdio.Terminal = req.Tty
			if err == nil {
				var console *os.File
				spawned := func(pid int) {
					b, _ := json.Marshal(spawnReply{Seq: req.Seq, Spawned: true, Pid: pid})
					wmu.Lock()
					conn.WriteMsgUnix(b, nil, nil)
					wmu.Unlock()
				}
				r.Pid, console, _, err = rt.create(req.ID, req.Bundle, stdio, spawned)
				closeStdio(stdio)
				if console != nil {
					defer console.Close()
					r.Console = true
					r.console = console
				}
			}
			if err != nil {
				r.Error = err.Error()
			}
			b, _ := json.Marshal(r)
			var oob []byte
			if r.console != nil {
				oob = unix.UnixRights(int(r.console.Fd()))
			}
			wmu.Lock()
			conn.WriteMsgUnix(b, oob, nil)
			wmu.Unlock()
		}()
	}
}

func stdioOf(has int, fds []int) (monitor.Stdio, error) {
	var files [3]*os.File
	next := 0
	for i := range files {
		if has&(1<<i) == 0 {
			continue
		}
		if next == len(fds) {
			for _, f := range files {
				if f != nil {
					f.Close()
				}
			}
			for _, fd := range fds {
				unix.Close(fd)
			}
			return monitor.Stdio{}, fmt.Errorf("spawner: %d fds for stdio mask %b", len(fds), has)
		}
		files[i] = os.NewFile(uintptr(fds[next]), "stdio")
		next++
	}
	for _, fd := range fds[next:] {
		unix.Close(fd)
	}
	return monitor.Stdio{Stdin: files[0], Stdout: files[1], Stderr: files[2]}, nil
}

func closeStdio(s monitor.Stdio) {
	for _, f := range []*os.File{s.Stdin, s.Stdout, s.Stderr} {
		if f != nil {
			f.Close()
		}
	}
}
