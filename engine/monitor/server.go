package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Server is the monitor.
type Server struct {
	rt   Runtime
	root string // holds exits/<id>.json
	log  *slog.Logger

	mu    sync.Mutex // guards procs, subs and deletes
	procs map[string]*proc
	subs  map[*subscriber]struct{}
	// deletes are the runtime deletes in flight, by container id: each
	// channel closes when its delete is done (see supervise).
	deletes map[string]chan struct{}

	poll poller // the quiet processes' output and exits
}

// NewServer returns a monitor keeping its files under root, and loads the
// exits recorded before a restart of the monitor itself.
func NewServer(rt Runtime, root string, log *slog.Logger) (*Server, error) {
	s := &Server{rt: rt, root: root, log: log, procs: map[string]*proc{}, subs: map[*subscriber]struct{}{}, deletes: map[string]chan struct{}{}}
	if err := os.MkdirAll(filepath.Join(root, "exits"), 0o700); err != nil {
		return nil, fmt.Errorf("monitor root: %w", err)
	}
	if err := s.loadExits(); err != nil {
		return nil, err
	}
	return s, nil
}

// BecomeSubreaper makes the calling process the reaper of orphaned
// descendants, so container inits stay ours even if a runtime's
// intermediate process exits. It is process-wide: call it from main only.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
	}
	return nil
}

// Serve accepts connections on l until ctx ends and no process runs: a
// stop request (SIGTERM) while containers run is refused, since their
// output and exits would be lost with us.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := make(chan struct{})
	go func() {
		<-ctx.Done()
		for s.busy() {
			s.log.Warn("monitor: asked to stop while processes run; waiting for them to exit")
			time.Sleep(time.Second)
		}
		close(stop)
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			select {
			case <-stop:
				return nil
			default:
			}
			return fmt.Errorf("monitor accept: %w", err)
		}
		go s.serveConn(ctx, conn)
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	br := bufio.NewReader(conn)
	stream := &bufConn{Conn: conn, r: br}
	// Requests without a stream follow each other on one connection: a
	// client that keeps it (see Response.Reuse) spares both sides a
	// connect, an accept and a goroutine per call. One that closes it
	// after its answer ends the loop with EOF.
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			conn.Close()
			return
		}
		var req Request
		if err := json.Unmarshal(line, &req); err != nil {
			reply(conn, Response{Error: "bad request: " + err.Error()})
			conn.Close()
			return
		}
		if s.dispatch(ctx, &req, stream) {
			return // the connection became a stream; its owner closes it
		}
	}
}

// dispatch answers req; it returns true when conn now belongs to a stream.
func (s *Server) dispatch(ctx context.Context, req *Request, conn *bufConn) bool {
	var resp Response
	var err error
	switch req.Op {
	case OpStart:
		var created func(pid int)
		if req.Created && !req.Hold {
			created = func(pid int) { reply(conn, Response{Pid: pid, Created: true}) }
		}
		resp.Pid, err = s.start(ctx, req, created)
	case OpExec:
		return s.exec(ctx, req, conn)
	case OpAttach:
		return s.attach(req, conn)
	case OpSubscribe:
		s.subscribe(conn)
		return true
	case OpRelease:
		err = s.release(ctx, req.ID)
	case OpKill:
		err = s.rt.Kill(ctx, req.ID, req.Signal, req.All)
	case OpPause:
		err = s.rt.Pause(ctx, req.ID)
	case OpResume:
		err = s.rt.Resume(ctx, req.ID)
	case OpResize:
		err = s.resize(req)
	case OpList:
		resp.States = s.list()
	case OpForget:
		s.forget(req.ID)
	case OpDelete:
		s.waitDeleted(req.ID)
		s.forget(req.ID)
	case OpPids:
		resp.Pids, err = s.rt.Pids(ctx, req.ID)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		resp.Error = err.Error()
	}
	resp.Reuse = true
	reply(conn, resp)
	return false
}

// release starts a container created with Hold. Its process may exit
// before the runtime's start has recorded the start: the runtime delete
// of that exit waits for it (see supervise).
func (s *Server) release(ctx context.Context, id string) error {
	p := s.getProc(id, "")
	p.releasing.Lock()
	defer p.releasing.Unlock()
	if err := s.rt.Start(ctx, id); err != nil {
		s.rt.Kill(ctx, id, 9, true)
		return err
	}
	return nil
}

func reply(conn net.Conn, resp Response) error {
	b, _ := json.Marshal(resp)
	_, err := conn.Write(append(b, '\n'))
	return err
}

func (s *Server) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deletes) > 0 {
		return true
	}
	for _, p := range s.procs {
		if p.active() {
			return true
		}
	}
	return false
}

func (s *Server) list() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, p := range s.procs {
		if p.execID != "" {
			continue
		}
		p.mu.Lock()
		if p.status.Pid != 0 || !p.status.ExitedAt.IsZero() {
			out = append(out, p.status)
		}
		p.mu.Unlock()
	}
	return out
}

func (s *Server) forget(id string) {
	s.mu.Lock()
	p := s.procs[id]
	gone := p != nil && !p.active()
	if gone {
		delete(s.procs, id)
	}
	s.mu.Unlock()
	if gone {
		p.closeLog()
		os.Remove(s.exitFile(id))
	}
}

// getProc returns the session of a container or exec, making it if new:
// an attach may come before the start (docker run attaches first).
func (s *Server) getProc(id, execID string) *proc {
	key := id
	if execID != "" {
		key = id + "/" + execID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[key]
	if p == nil {
		p = newProc(id, execID)
		s.procs[key] = p
	}
	return p
}

// claim returns the session of container id marked as starting, or an
// error if it runs or is being started. The mark is set under s.mu, as
// forget checks it: a removal racing the start cannot drop the session
// the start is about to run a process in.
func (s *Server) claim(id string) (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[id]
	if p == nil {
		p = newProc(id, "")
		s.procs[id] = p
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status.Running || p.starting {
		return nil, fmt.Errorf("container %s is already running", id)
	}
	p.starting = true
	return p, nil
}

func (s *Server) dropProc(p *proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := p.id + "/" + p.execID
	if s.procs[key] == p {
		delete(s.procs, key)
	}
}

func (s *Server) resize(req *Request) error {
	key := req.ID
	if req.ExecID != "" {
		key += "/" + req.ExecID
	}
	s.mu.Lock()
	p := s.procs[key]
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no process %s", key)
	}
	return p.resize(req.Height, req.Width)
}

func (s *Server) exitFile(id string) string {
	return filepath.Join(s.root, "exits", id+".json")
}

// recordExit persists a container's exit (temp file + rename: a crash
// leaves the old file or the new one) before telling subscribers.
func (s *Server) recordExit(st Status) {
	b, _ := json.Marshal(st)
	tmp := s.exitFile(st.ID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		os.Rename(tmp, s.exitFile(st.ID))
	} else {
		s.log.Error("record exit", "id", st.ID, "err", err)
	}
}

func (s *Server) loadExits() error {
	dir := filepath.Join(s.root, "exits")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read exits: %w", err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		var st Status
		if err != nil || json.Unmarshal(b, &st) != nil || st.ID == "" {
			continue
		}
		p := newProc(st.ID, "")
		p.status = st
		s.procs[st.ID] = p
		// The exit is recorded before the runtime delete (see supervise):
		// a monitor that died in between left the delete undone. Again is
		// harmless when it was done.
		go s.runDelete(st.ID, s.beginDelete(st.ID))
	}
	return nil
}

// beginDelete registers a runtime delete of id before anyone can learn of
// the exit it follows: a start or a removal of id then waits for it.
func (s *Server) beginDelete(id string) chan struct{} {
	done := make(chan struct{})
	s.mu.Lock()
	s.deletes[id] = done
	s.mu.Unlock()
	return done
}

// runDelete removes what the runtime made for id's last run (cgroup,
// state) and closes done.
func (s *Server) runDelete(id string, done chan struct{}) {
	if err := s.rt.Delete(context.Background(), id); err != nil {
		s.log.Warn("runtime delete", "id", id, "err", err)
	}
	s.mu.Lock()
	if s.deletes[id] == done {
		delete(s.deletes, id)
	}
	s.mu.Unlock()
	close(done)
}

// waitDeleted returns once no runtime delete of id is in flight.
func (s *Server) waitDeleted(id string) {
	s.mu.Lock()
	done := s.deletes[id]
	s.mu.Unlock()
	if done != nil {
		<-done
	}
}

type subscriber struct {
	ch   chan Status
	conn net.Conn
}

// subscribe streams exits as JSON lines. A subscriber that falls 4096
// events behind is cut off; it reconnects and catches up with list.
func (s *Server) subscribe(conn net.Conn) {
	sub := &subscriber{ch: make(chan Status, 4096), conn: conn}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	if err := reply(conn, Response{}); err != nil {
		s.unsubscribe(sub)
		return
	}
	go func() {
		// Reading only to notice the daemon going away.
		buf := make([]byte, 1)
		conn.Read(buf)
		s.unsubscribe(sub)
	}()
	go func() {
		enc := json.NewEncoder(conn)
		for st := range sub.ch {
			if enc.Encode(st) != nil {
				s.unsubscribe(sub)
				return
			}
		}
	}()
}

func (s *Server) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.ch)
		sub.conn.Close()
	}
}

func (s *Server) publish(st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		select {
		case sub.ch <- st:
		default:
			delete(s.subs, sub)
			close(sub.ch)
			sub.conn.Close()
		}
	}
}

// exitStatus is Docker's exit code: the status, or 128+signal.
func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// waitPid waits for pid to exit and reaps it, without a thread per
// container: the pidfd is parked in Go's netpoller (it becomes readable
// when the process exits), then wait4 reaps the zombie. The pidfd pins the
// pid, so wait4 cannot hit a recycled one.
func waitPid(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	var ws unix.WaitStatus
	var werr error
	err = rc.Read(func(uintptr) bool {
		var n int
		n, werr = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if errors.Is(werr, syscall.EINTR) {
			return false
		}
		return werr != nil || n == pid
	})
	if err != nil {
		return -1, err
	}
	if werr != nil {
		return -1, fmt.Errorf("wait4 %d: %w", pid, werr)
	}
	return exitStatus(ws), nil
}

// bufConn reads through the buffer that held the request line.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes: the peer sees EOF on its input (stdin) while the
// output keeps flowing.
func (c *bufConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Run serves a monitor on socket until ctx ends.
func Run(ctx context.Context, rt Runtime, root, socket string, log *slog.Logger) error {
	srv, err := NewServer(rt, root, log)
	if err != nil {
		return err
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stale monitor socket: %w", err)
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("monitor listen: %w", err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		l.Close()
		return err
	}
	log.Info("estiba monitor listening", "socket", socket)
	return srv.Serve(ctx, l)
}
