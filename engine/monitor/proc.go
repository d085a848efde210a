package monitor

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/estiba/estiba/engine/logs"
	"golang.org/x/sys/unix"
)

// proc is one container's (or exec's) session: its stdio, its log and the
// attached clients. It outlives a container's runs so restarts keep the
// same log writer and attachments made before the first start.
type proc struct {
	id, execID string

	mu        sync.Mutex // guards everything below
	status    Status
	tty       bool
	stdinOnce bool
	stdin     *os.File // our end of the container's stdin (pipe or pty master)
	console   *os.File // pty master, with a tty
	logw      *logs.Writer
	attached  map[*attachment]struct{}
	started   chan struct{} // closed when the current run's stdin is set
	// starting is set from the start's checks until its process runs
	// (or the start fails): a removal (OpForget, OpDelete) must not drop
	// the session meanwhile, nor a stopping Serve forget its exit.
	starting bool

	// releasing is held while the runtime starts a held container
	// (OpRelease); the runtime delete after an exit takes it first.
	releasing sync.Mutex

	// mntns is the current run's mount namespace, held from the fork to
	// after the exit (see holdMountNS); nil without.
	mntns *os.File
}

func newProc(id, execID string) *proc {
	return &proc{id: id, execID: execID, attached: map[*attachment]struct{}{}, started: make(chan struct{})}
}

// active reports whether p's process runs or is being started.
func (p *proc) active() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status.Running || p.starting
}

func (p *proc) startFailed() {
	p.mu.Lock()
	p.starting = false
	p.mu.Unlock()
}

func (p *proc) closeLog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logw != nil {
		p.logw.Close()
		p.logw = nil
	}
}

func (p *proc) resize(h, w uint16) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.console == nil {
		return fmt.Errorf("%s has no terminal", p.id)
	}
	return unix.IoctlSetWinsize(int(p.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
}

// stdio makes the container's fds: pipes, or nothing with a tty (the
// runtime then hands back the pty master, see setConsole). It returns the
// container's ends (closed by the caller once the runtime has them) and
// our read ends for stdout and stderr.
func (p *proc) stdio(tty, openStdin bool) (child Stdio, stdout, stderr *os.File, err error) {
	if tty {
		return Stdio{}, nil, nil, nil
	}
	var files []*os.File
	fail := func(err error) (Stdio, *os.File, *os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return Stdio{}, nil, nil, err
	}
	or, ow, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	files = append(files, or, ow)
	er, ew, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	files = append(files, er, ew)
	setPipeSize(ow, pipeStart)
	setPipeSize(ew, pipeStart)
	var in *os.File
	if openStdin {
		ir, iw, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		in, p.stdin = ir, iw
	} else if in, err = os.Open(os.DevNull); err != nil {
		return fail(err)
	}
	return Stdio{Stdin: in, Stdout: ow, Stderr: ew}, or, er, nil
}

// A container's output pipes start with two pages and grow to the
// kernel's default once a read finds one full. Most containers sit silent
// for their whole life, and a pipe's ring of 16 slots is a kmalloc-1k that
// the container's memory cgroup holds for as long as it runs (two pipes
// each); two slots fit in 96 bytes. A chatty container waits on a full
// pipe for at most one read of ours before it gets the whole 64 KiB.
const (
	pipeStart = 2 << 12
	pipeFull  = 64 << 10
)

// setPipeSize resizes f's pipe, best effort (a smaller pipe is only
// memory; a failed growth is only speed). Through the raw descriptor:
// Fd would put the file in blocking mode.
func setPipeSize(f *os.File, size int) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size) })
	}
}

func closeStdio(s Stdio) {
	seen := map[*os.File]bool{}
	for _, f := range []*os.File{s.Stdin, s.Stdout, s.Stderr} {
		if f != nil && !seen[f] {
			seen[f] = true
			f.Close()
		}
	}
}

// start creates and starts the container and returns its pid. created,
// if set, learns the pid once the init exists, before the start: the
// caller's bookkeeping then overlaps the rest of the runtime's work.
func (s *Server) start(ctx context.Context, req *Request, created func(pid int)) (int, error) {
	// The runtime delete of the last run must be done before the
	// runtime creates the container again.
	s.waitDeleted(req.ID)
	p, err := s.claim(req.ID)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	if p.logw == nil && req.LogPath != "" {
		w, err := logs.NewWriter(req.LogPath, req.LogMaxSize, req.LogMaxFiles)
		if err != nil {
			p.starting = false
			p.mu.Unlock()
			return 0, err
		}
		p.logw = w
	}
	p.tty, p.stdinOnce = req.Tty, req.StdinOnce
	child, stdout, stderr, err := p.stdio(req.Tty, req.OpenStdin)
	child.Terminal = req.Tty
	p.starting = err == nil
	p.mu.Unlock()
	if err != nil {
		return 0, err
	}
	notify := created
	if req.AutoRemove && created != nil {
		notify = func(pid int) {
			// The caller's bookkeeping first: the init has the rest of
			// the start to go through before it could exit.
			created(pid)
			p.holdMountNS(pid)
		}
	}
	pid, console, err := s.create(ctx, req, child, notify)
	if err == nil && req.AutoRemove && created == nil {
		p.holdMountNS(pid) // held (Hold): it waits for OpRelease
	}
	closeStdio(child)
	stdout = p.setConsole(console, stdout)
	if err == nil && !req.Hold {
		if err = s.rt.Start(ctx, req.ID); err != nil {
			s.rt.Kill(ctx, req.ID, 9, true)
		}
	}
	if err != nil {
		p.closeStdio(stdout, stderr)
		if pid > 0 {
			waitPid(pid)
			s.rt.Delete(ctx, req.ID)
		}
		p.releaseMountNS(0)
		p.startFailed()
		return 0, err
	}
	p.running(pid)
	go s.supervise(p, pid, stdout, stderr)
	return pid, nil
}

// spawnNotifier is a Runtime that tells the init's pid as soon as it is
// forked, before the rest of Create (the rootfs, the cgroups).
type spawnNotifier interface {
	CreateSpawned(ctx context.Context, id, bundle string, stdio Stdio, spawned func(pid int)) (int, *os.File, error)
}

// create runs the runtime's Create; created, if set, learns the init's pid
// as early as the runtime tells it (at the fork, or else once created).
func (s *Server) create(ctx context.Context, req *Request, stdio Stdio, created func(pid int)) (int, *os.File, error) {
	if n, ok := s.rt.(spawnNotifier); ok && created != nil {
		return n.CreateSpawned(ctx, req.ID, req.Bundle, stdio, created)
	}
	pid, console, err := s.rt.Create(ctx, req.ID, req.Bundle, stdio)
	if err == nil && created != nil {
		created(pid)
	}
	return pid, console, err
}

// holdMountNS takes a reference on the mount namespace of the container's
// init, pid, which we are the parent of (it cannot be reaped, and its pid
// reused, before we wait for it). When the last process of a mount
// namespace exits, the kernel unmounts the namespace's whole tree in that
// exit (umount_tree, then an expedited RCU grace period in
// namespace_unlock), before exit_notify: the exit became visible ~1.5 ms
// after exit_group here, on every `run --rm`'s critical path. Held, the
// tree goes when releaseMountNS closes the reference instead. Only for a
// container removed at its exit (Request.AutoRemove): a client (`run
// --rm`) waits for that exit and the removal after it, and the hold costs
// a descriptor for the whole run. A failure only loses the gain.
func (p *proc) holdMountNS(pid int) {
	// A plain descriptor: an os.File would try the poller first (an
	// fcntl and an epoll_ctl that nsfs refuses).
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "mntns") // blocking: never in the poller
	p.mu.Lock()
	old := p.mntns
	p.mntns = f
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// releaseMountNS drops the run's mount namespace after delay. The close
// tears the container's mounts down (its rootfs overlay, proc, sysfs, the
// cgroup and device mounts; a grace period): right after the exit, that
// ran beside the daemon's removal of the same container and delayed it
// (+0.5 ms to a `run --rm`).
func (p *proc) releaseMountNS(delay time.Duration) {
	p.mu.Lock()
	f := p.mntns
	p.mntns = nil
	p.mu.Unlock()
	if f != nil {
		// Never on the caller's goroutine, even with no delay: the close
		// waits for the teardown.
		time.AfterFunc(delay, func() { f.Close() })
	}
}

// setConsole adopts a pty master: it is the process's stdin and output.
func (p *proc) setConsole(console, stdout *os.File) *os.File {
	if console == nil {
		return stdout
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.console, p.stdin = console, console
	return console
}

func (p *proc) closeStdio(stdout, stderr *os.File) {
	p.mu.Lock()
	for _, f := range []*os.File{stdout, stderr} {
		if f != nil && f != p.console {
			f.Close()
		}
	}
	if p.stdin != nil && p.stdin != p.console {
		p.stdin.Close()
	}
	if p.console != nil {
		p.console.Close()
	}
	p.stdin, p.console = nil, nil
	p.mu.Unlock()
}

func (p *proc) running(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = Status{ID: p.id, ExecID: p.execID, Pid: pid, Running: true}
	p.starting = false
	select {
	case <-p.started:
	default:
		close(p.started)
	}
}

// supervise copies output until the process exits, then records the exit.
// A quiet container costs no goroutine: its pipes and its pidfd wait in
// the monitor's poller (see poller); a stream gets a goroutine of its own
// once a client is attached (or with a terminal), since writes to a client
// may block. The exit is handled by a goroutine started when it happens.
func (s *Server) supervise(p *proc, pid int, stdout, stderr *os.File) {
	sv := &supervision{s: s, p: p, pid: pid, files: []*os.File{stdout, stderr}, pidfd: -1}
	p.mu.Lock()
	quiet := !p.tty && len(p.attached) == 0
	p.mu.Unlock()
	for i, f := range sv.files {
		if f == nil {
			continue
		}
		stream := byte(i + 1)
		split := p.splitter(stream)
		sv.copiers.Add(1)
		if quiet {
			o, err := s.watchStream(p, stream, f, split, sv.copiers.Done)
			if err == nil {
				sv.watched = append(sv.watched, o)
				continue
			}
			s.log.Warn("poll output", "id", p.id, "err", err)
		}
		go func() {
			defer sv.copiers.Done()
			p.pump(stream, f, split)
		}()
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err == nil {
		sv.pidfd, sv.tok = fd, s.poll.reserve()
		if err = s.poll.add(fd, sv.tok, sv); err == nil {
			return
		}
		unix.Close(fd)
		sv.pidfd = -1
	}
	s.log.Warn("poll exit", "id", p.id, "pid", pid, "err", err)
	go sv.finish()
}

// supervision is one run of a process: its output streams and its exit.
type supervision struct {
	s       *Server
	p       *proc
	pid     int
	files   []*os.File // stdout, stderr (nil with a terminal: the console is stdout)
	watched []*outStream
	copiers sync.WaitGroup // one per stream, done at its EOF
	pidfd   int            // -1 without
	tok     uint64
}

// ready is the pidfd's event: the process has exited.
func (sv *supervision) ready() {
	sv.s.poll.del(sv.pidfd, sv.tok)
	go sv.finish()
}

// finish reaps the process, drains its output and records the exit.
func (sv *supervision) finish() {
	s, p, pid := sv.s, sv.p, sv.pid
	code, err := sv.reap()
	if err != nil {
		s.log.Error("wait", "id", p.id, "pid", pid, "err", err)
	}
	// Output written before the exit is still in the pipes: drain it so
	// the log is complete when the exit is announced. A grandchild that
	// kept the pipe open (no pid namespace) must not hold us forever.
	drained := make(chan struct{})
	go func() { sv.copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		for _, o := range sv.watched {
			o.stop()
		}
	}
	p.closeStdio(sv.files[0], sv.files[1])
	<-drained
	st := Status{ID: p.id, ExecID: p.execID, Pid: pid, ExitCode: code, ExitedAt: time.Now().UTC()}
	if p.execID != "" {
		p.exited(st)
		s.publish(st)
		s.dropProc(p)
		return
	}
	// The exit is announced before the runtime delete (cgroup removal, a
	// third of the way from the exit to a `run --rm` returning), which
	// then runs beside the daemon's own removal work. It is registered
	// first: a start of the same container, and a removal (OpDelete), wait
	// for it.
	s.recordExit(st)
	deleted := s.beginDelete(p.id)
	p.exited(st)
	s.publish(st)
	// The subscribers' writers were just readied on this P: let them send
	// the exit before the delete's syscalls keep them waiting.
	runtime.Gosched()
	p.waitRelease()
	// Before the delete ends: a start of the same container waits for it,
	// and holds its own run's namespace.
	p.releaseMountNS(mountNSLinger)
	s.runDelete(p.id, deleted)
}

// mountNSLinger is how long a run's mount namespace outlives its exit (see
// releaseMountNS): past the removal of a `run --rm` container (~2 ms here).
const mountNSLinger = 50 * time.Millisecond

// reap collects the exit status: at once when the pidfd said it exited,
// else (no pidfd) by waiting.
func (sv *supervision) reap() (int, error) {
	if sv.pidfd < 0 {
		return waitPid(sv.pid)
	}
	defer unix.Close(sv.pidfd)
	var ws unix.WaitStatus
	for {
		// The pidfd pins the pid: wait4 cannot reap a recycled one.
		_, err := unix.Wait4(sv.pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait4 %d: %w", sv.pid, err)
		}
		return exitStatus(ws), nil
	}
}

// waitRelease returns once no OpRelease of p is in flight: a process that
// exits at once may do so before the runtime's start has written its
// state, which the delete removes.
func (p *proc) waitRelease() {
	p.releasing.Lock()
	p.releasing.Unlock() //nolint:staticcheck // an empty section: it only waits
}

func (p *proc) exited(st Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = st
	for a := range p.attached {
		a.close()
	}
	p.attached = map[*attachment]struct{}{}
	p.started = make(chan struct{})
}

// splitter turns one output stream of p into log entries.
func (p *proc) splitter(stream byte) *logs.LineSplitter {
	name := "stdout"
	if stream == 2 {
		name = "stderr"
	}
	return &logs.LineSplitter{Stream: name, Emit: func(e logs.Entry) error {
		p.mu.Lock()
		w := p.logw
		p.mu.Unlock()
		if w != nil {
			return w.Write(e)
		}
		return nil
	}}
}

// pump reads one output stream into the log and the attached clients, on
// a goroutine of its own.
func (p *proc) pump(stream byte, f *os.File, split *logs.LineSplitter) {
	rc, err := f.SyscallConn()
	if err != nil {
		split.Flush()
		return
	}
	grown := false
	for {
		full := false
		err := readPooled(rc, func(b []byte) {
			full = len(b) >= pipeStart
			split.Write(b)
			p.broadcast(stream, b)
		})
		if full && !grown {
			setPipeSize(f, pipeFull)
			grown = true
		}
		if err != nil {
			split.Flush()
			return
		}
	}
}

// outStream is an output pipe read by the poller while no client is
// attached: into the log only.
type outStream struct {
	l      *poller
	p      *proc
	stream byte
	f      *os.File
	rc     syscall.RawConn
	split  *logs.LineSplitter
	tok    uint64
	done   func() // once: at EOF, at stop, or by the pump it was handed to

	mu    sync.Mutex // held by ready; guards off and grown
	off   bool       // no longer the poller's (EOF, stopped, handed off)
	grown bool       // the pipe has its full size (see pipeStart)
}

func (s *Server) watchStream(p *proc, stream byte, f *os.File, split *logs.LineSplitter, done func()) (*outStream, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	o := &outStream{l: &s.poll, p: p, stream: stream, f: f, rc: rc, split: split, tok: s.poll.reserve(), done: done}
	var aerr error
	if err := rc.Control(func(fd uintptr) { aerr = s.poll.add(int(fd), o.tok, o) }); err != nil {
		return nil, err
	}
	return o, aerr
}

func (o *outStream) ready() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.off {
		return
	}
	o.p.mu.Lock()
	attached := len(o.p.attached) > 0
	o.p.mu.Unlock()
	if attached {
		// A client's writes may block, which the poller must not: the
		// stream is pumped by a goroutine from here on (nothing is read
		// yet, so nothing is lost or reordered).
		o.release()
		go func() {
			defer o.done()
			o.p.pump(o.stream, o.f, o.split)
		}()
		return
	}
	var n int
	var rerr error
	if err := o.rc.Control(func(fd uintptr) {
		for {
			if n, rerr = unix.Read(int(fd), o.l.buf); rerr != unix.EINTR {
				break
			}
		}
	}); err != nil {
		rerr = err
	}
	switch {
	case rerr == unix.EAGAIN:
		return
	case rerr == nil && n > 0:
		o.split.Write(o.l.buf[:n])
		if n >= pipeStart && !o.grown {
			setPipeSize(o.f, pipeFull)
			o.grown = true
		}
		return
	}
	// EOF, or an error that would repeat.
	o.end()
}

// release takes the stream out of the poller; o.mu is held.
func (o *outStream) release() {
	o.off = true
	o.rc.Control(func(fd uintptr) { o.l.del(int(fd), o.tok) })
}

// stop gives up on a stream that did not reach EOF (a grandchild holds
// the pipe open), before the file is closed.
func (o *outStream) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.off {
		o.end()
	}
}

// end finishes the stream in the poller: its last partial line goes to
// the log and the exit is told it is drained; o.mu is held.
func (o *outStream) end() {
	o.release()
	o.split.Flush()
	o.done()
}

// pumpBufs are the read buffers of every pump. Most containers sit silent
// for their whole life: a buffer of their own (two per container) was the
// largest share of the monitor's memory per container, and a bigger heap
// also makes each later fork of the monitor slower.
var pumpBufs = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// readPooled waits until rc is readable holding no buffer, then reads into
// a pooled one and hands the bytes to use before the buffer goes back. It
// returns io.EOF at the end of the stream.
func readPooled(rc syscall.RawConn, use func([]byte)) error {
	var n int
	var rerr error
	var bp *[]byte
	err := rc.Read(func(fd uintptr) bool {
		bp = pumpBufs.Get().(*[]byte)
		for {
			n, rerr = unix.Read(int(fd), *bp)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			pumpBufs.Put(bp)
			bp = nil
			return false
		}
		return true
	})
	if bp != nil {
		if n > 0 {
			use((*bp)[:n])
		}
		pumpBufs.Put(bp)
	}
	switch {
	case err != nil:
		return err
	case rerr != nil:
		return rerr
	case n == 0:
		return io.EOF
	}
	return nil
}

func (p *proc) broadcast(stream byte, b []byte) {
	p.mu.Lock()
	list := make([]*attachment, 0, len(p.attached))
	for a := range p.attached {
		list = append(list, a)
	}
	p.mu.Unlock()
	for _, a := range list {
		if err := a.write(stream, b); err != nil {
			p.mu.Lock()
			delete(p.attached, a)
			p.mu.Unlock()
			a.close()
		}
	}
}

// attachment is one client stream: output framed as Docker's multiplexed
// stream (or raw with a tty), stdin copied in.
type attachment struct {
	mu             sync.Mutex // serializes writes; held until the reply is out
	conn           net.Conn
	tty            bool
	stdout, stderr bool
	closed         bool
	done           chan struct{} // closed by close
}

func newAttachment(conn net.Conn, tty, stdout, stderr bool) *attachment {
	return &attachment{conn: conn, tty: tty, stdout: stdout, stderr: stderr, done: make(chan struct{})}
}

func (a *attachment) write(stream byte, b []byte) error {
	if (stream == 1 && !a.stdout) || (stream == 2 && !a.stderr) {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return io.ErrClosedPipe
	}
	if !a.tty {
		var hdr [8]byte
		hdr[0] = stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(b)))
		if _, err := a.conn.Write(hdr[:]); err != nil {
			return err
		}
	}
	_, err := a.conn.Write(b)
	return err
}

func (a *attachment) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.done)
		a.conn.Close()
	}
}

// attach registers conn on a container; it is answered at once and then
// gets output until the container exits.
func (s *Server) attach(req *Request, conn *bufConn) bool {
	p := s.getProc(req.ID, req.ExecID)
	p.mu.Lock()
	a := newAttachment(conn, p.tty || req.Tty, req.Stdout, req.Stderr)
	p.attached[a] = struct{}{}
	started := p.started
	p.mu.Unlock()
	a.mu.Lock()
	err := reply(conn, Response{})
	a.mu.Unlock()
	if err != nil {
		a.close()
		return true
	}
	go s.copyStdin(p, a, req.Stdin, started)
	return true
}

// copyStdin feeds the client's input to the container once it runs; with
// StdinOnce (docker run -i) the client's EOF closes the container's stdin.
func (s *Server) copyStdin(p *proc, a *attachment, wantStdin bool, started chan struct{}) {
	if !wantStdin {
		// A client without stdin half-closes at once (docker does): EOF
		// here is not a detach. A client that is gone shows up as a failed
		// write, which drops the attachment (see broadcast).
		io.Copy(io.Discard, a.conn)
		return
	}
	select {
	case <-started:
	case <-a.done:
		return
	}
	p.mu.Lock()
	in, once := p.stdin, p.stdinOnce
	p.mu.Unlock()
	if in == nil {
		io.Copy(io.Discard, a.conn)
		return
	}
	io.Copy(in, a.conn)
	if once {
		p.mu.Lock()
		if p.stdin == in && p.stdin != p.console {
			p.stdin.Close()
			p.stdin = nil
		}
		p.mu.Unlock()
	}
}

// exec runs a process in a container; with any attach flag the connection
// then streams it, like attach.
func (s *Server) exec(ctx context.Context, req *Request, conn *bufConn) bool {
	if req.Process == nil || req.ExecID == "" {
		reply(conn, Response{Error: "exec needs a process and an exec id"})
		return false
	}
	p := s.getProc(req.ID, req.ExecID)
	var a *attachment
	p.mu.Lock()
	p.tty, p.stdinOnce = req.Process.Terminal, true
	if req.Stdin || req.Stdout || req.Stderr {
		a = newAttachment(conn, p.tty, req.Stdout, req.Stderr)
		// Held until our reply is written: output must follow it.
		a.mu.Lock()
		p.attached[a] = struct{}{}
	}
	child, stdout, stderr, err := p.stdio(p.tty, req.Stdin)
	p.starting = err == nil
	p.mu.Unlock()
	var pid int
	if err == nil {
		var console *os.File
		pid, console, err = s.rt.Exec(ctx, req.ID, req.Process, child)
		closeStdio(child)
		stdout = p.setConsole(console, stdout)
	}
	if err != nil {
		if a != nil {
			a.mu.Unlock()
		}
		p.closeStdio(stdout, stderr)
		s.dropProc(p)
		reply(conn, Response{Error: err.Error()})
		return false
	}
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	p.running(pid)
	go s.supervise(p, pid, stdout, stderr)
	err = reply(conn, Response{Pid: pid})
	if a == nil {
		return false
	}
	a.mu.Unlock()
	if err != nil {
		a.close()
		return true
	}
	go s.copyStdin(p, a, req.Stdin, started)
	return true
}
