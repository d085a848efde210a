package monitor_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/engine/internal/fakeruntime"
	"github.com/estiba/estiba/engine/logs"
	"github.com/estiba/estiba/engine/monitor"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func startMonitor(t *testing.T) (*monitor.Client, string) {
	t.Helper()
	return startMonitorWith(t, fakeruntime.New())
}

func startMonitorWith(t *testing.T, rt monitor.Runtime) (*monitor.Client, string) {
	t.Helper()
	dir := t.TempDir()
	srv, err := monitor.NewServer(rt, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "m.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	// Serve returns once no process runs and no runtime delete is in
	// flight: only then may the temp dir (exits/ in it) go. A container
	// that exited as the test ended still has its exit being written.
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return &monitor.Client{Socket: sock}, dir
}

func bundle(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	spec := specs.Spec{Process: &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/usr/bin:/bin"}}}
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// demux reads Docker's multiplexed stream.
func demux(t *testing.T, r io.Reader) (stdout, stderr string) {
	var o, e bytes.Buffer
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return o.String(), e.String()
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		w := &o
		if hdr[0] == 2 {
			w = &e
		}
		io.CopyN(w, r, int64(n))
	}
}

func TestStartAttachLogExit(t *testing.T) {
	c, dir := startMonitor(t)
	ctx := context.Background()
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := c.Dial(ctx, &monitor.Request{Op: monitor.OpAttach, ID: "c1", Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "c1-json.log")
	b := bundle(t, "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c1", Bundle: b, LogPath: logPath}); err != nil {
		t.Fatal(err)
	}
	out, errs := demux(t, conn)
	if out != "out\n" || errs != "err\n" {
		t.Fatalf("attach got %q %q", out, errs)
	}
	select {
	case st := <-events:
		if st.ID != "c1" || st.ExitCode != 3 {
			t.Fatalf("exit event %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit event")
	}
	var lines []string
	logs.Read(ctx, logPath, 1, logs.ReadOptions{Tail: -1}, func(e logs.Entry) error {
		lines = append(lines, e.Stream+":"+e.Log)
		return nil
	})
	if strings.Join(lines, "") != "stdout:out\nstderr:err\n" && strings.Join(lines, "") != "stderr:err\nstdout:out\n" {
		t.Fatalf("log %q", lines)
	}
	resp, err := c.Call(ctx, &monitor.Request{Op: monitor.OpList})
	if err != nil || len(resp.States) != 1 || resp.States[0].Running || resp.States[0].ExitCode != 3 {
		t.Fatalf("list %+v %v", resp, err)
	}
	c.Call(ctx, &monitor.Request{Op: monitor.OpForget, ID: "c1"})
	if resp, _ := c.Call(ctx, &monitor.Request{Op: monitor.OpList}); len(resp.States) != 0 {
		t.Fatalf("forgotten exit still listed: %+v", resp.States)
	}
}

func TestStdinOnceAndExec(t *testing.T) {
	c, _ := startMonitor(t)
	ctx := context.Background()
	conn, _, err := c.Dial(ctx, &monitor.Request{Op: monitor.OpAttach, ID: "c2", Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	b := bundle(t, "/bin/cat")
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c2", Bundle: b, OpenStdin: true, StdinOnce: true}); err != nil {
		t.Fatal(err)
	}
	// An exec while the container runs, attached.
	ec, resp, err := c.Dial(ctx, &monitor.Request{Op: monitor.OpExec, ID: "c2", ExecID: "e1", Stdout: true,
		Process: &specs.Process{Args: []string{"/bin/echo", "from exec"}, Cwd: "/"}})
	if err != nil || resp.Pid == 0 {
		t.Fatalf("exec: %v %+v", err, resp)
	}
	if out, _ := demux(t, ec); out != "from exec\n" {
		t.Fatalf("exec output %q", out)
	}
	conn.Write([]byte("hello\n"))
	conn.(interface{ CloseWrite() error }).CloseWrite()
	if out, _ := demux(t, conn); out != "hello\n" {
		t.Fatalf("cat echoed %q", out)
	}
}

// gatedDelete is the fake runtime with a Delete that waits for open, and
// a Create that notes whether every Delete so far had finished.
type gatedDelete struct {
	*fakeruntime.Runtime
	open             chan struct{}
	mu               sync.Mutex
	deleting         int
	createdMidDelete bool
}

func (g *gatedDelete) Delete(ctx context.Context, id string) error {
	g.mu.Lock()
	g.deleting++
	g.mu.Unlock()
	<-g.open
	defer func() {
		g.mu.Lock()
		g.deleting--
		g.mu.Unlock()
	}()
	return g.Runtime.Delete(ctx, id)
}

func (g *gatedDelete) Create(ctx context.Context, id, bundle string, stdio monitor.Stdio) (int, *os.File, error) {
	g.mu.Lock()
	if g.deleting > 0 {
		g.createdMidDelete = true
	}
	g.mu.Unlock()
	return g.Runtime.Create(ctx, id, bundle, stdio)
}

// The exit is announced before the runtime delete; a removal (OpDelete)
// and a new start of the container wait for that delete.
func TestExitBeforeRuntimeDelete(t *testing.T) {
	g := &gatedDelete{Runtime: fakeruntime.New(), open: make(chan struct{})}
	c, _ := startMonitorWith(t, g)
	ctx := context.Background()
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := bundle(t, "/bin/true")
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c1", Bundle: b}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-events: // announced while the delete is held
	case <-time.After(10 * time.Second):
		t.Fatal("no exit event while the runtime delete is pending")
	}
	started := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c1", Bundle: b})
		started <- err
	}()
	removed := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, &monitor.Request{Op: monitor.OpDelete, ID: "c1"})
		removed <- err
	}()
	select {
	case err := <-removed:
		t.Fatalf("delete answered (%v) before the runtime delete ended", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.open)
	for _, ch := range []chan error{removed, started} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no answer once the runtime delete ended")
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.createdMidDelete {
		t.Fatal("a start created the container while its runtime delete ran")
	}
}

// gatedStart is the fake runtime with a Start (OpRelease) that waits for
// open, and a Delete that notes whether a Start was still running.
type gatedStart struct {
	*fakeruntime.Runtime
	open          chan struct{}
	mu            sync.Mutex
	starting      bool
	deletedMidRun bool
}

func (g *gatedStart) Start(ctx context.Context, id string) error {
	g.mu.Lock()
	g.starting = true
	g.mu.Unlock()
	<-g.open
	g.mu.Lock()
	g.starting = false
	g.mu.Unlock()
	return g.Runtime.Start(ctx, id)
}

func (g *gatedStart) Delete(ctx context.Context, id string) error {
	g.mu.Lock()
	if g.starting {
		g.deletedMidRun = true
	}
	g.mu.Unlock()
	return g.Runtime.Delete(ctx, id)
}

// A held container's process may exit while the runtime still starts it
// (OpRelease): the runtime delete waits for that start, which writes the
// state the delete removes.
func TestDeleteWaitsForRelease(t *testing.T) {
	g := &gatedStart{Runtime: fakeruntime.New(), open: make(chan struct{})}
	c, _ := startMonitorWith(t, g)
	ctx := context.Background()
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The fake runs the process at create: it exits while Start is held.
	b := bundle(t, "/bin/sh", "-c", "sleep 0.2")
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c1", Bundle: b, Hold: true}); err != nil {
		t.Fatal(err)
	}
	released := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, &monitor.Request{Op: monitor.OpRelease, ID: "c1"})
		released <- err
	}()
	select {
	case <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit event")
	}
	time.Sleep(100 * time.Millisecond) // a delete that did not wait would run now
	close(g.open)
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpDelete, ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deletedMidRun {
		t.Fatal("the runtime delete ran while the runtime still started the container")
	}
}

// gatedCreate is the fake runtime with a Create that signals entered and
// then waits for open.
type gatedCreate struct {
	*fakeruntime.Runtime
	entered, open chan struct{}
}

func (g *gatedCreate) Create(ctx context.Context, id, bundle string, stdio monitor.Stdio) (int, *os.File, error) {
	close(g.entered)
	<-g.open
	return g.Runtime.Create(ctx, id, bundle, stdio)
}

// A removal (OpDelete) that arrives while the runtime creates the
// container must not drop the session the start then runs a process in:
// the exit would go unlisted and a stopping monitor would not wait for it.
func TestDeleteDuringStartKeepsSession(t *testing.T) {
	g := &gatedCreate{Runtime: fakeruntime.New(), entered: make(chan struct{}), open: make(chan struct{})}
	c, _ := startMonitorWith(t, g)
	ctx := context.Background()
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c1", Bundle: bundle(t, "/bin/true")})
		started <- err
	}()
	<-g.entered
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpDelete, ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c1", Bundle: bundle(t, "/bin/true")}); err == nil {
		t.Fatal("a second start of a container being started succeeded")
	}
	close(g.open)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	select {
	case <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit event")
	}
	resp, err := c.Call(ctx, &monitor.Request{Op: monitor.OpList})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.States) != 1 || resp.States[0].ID != "c1" {
		t.Fatalf("listed %+v, want the exit of c1", resp.States)
	}
}

// readLog returns a container's log as "stream:line" entries.
func readLog(t *testing.T, path string) []string {
	t.Helper()
	var lines []string
	logs.Read(context.Background(), path, 1, logs.ReadOptions{Tail: -1}, func(e logs.Entry) error {
		lines = append(lines, e.Stream+":"+e.Log)
		return nil
	})
	return lines
}

func waitExit(t *testing.T, events <-chan monitor.Status, id string, within time.Duration) monitor.Status {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case st := <-events:
			if st.ID == id && st.ExecID == "" {
				return st
			}
		case <-deadline:
			t.Fatalf("no exit event for %s within %v", id, within)
		}
	}
}

// A quiet container's output is read by the monitor's poller into the log;
// a client attached later gets what follows (the stream moves to a
// goroutine of its own), and the log misses nothing.
func TestQuietOutputThenAttach(t *testing.T) {
	c, dir := startMonitor(t)
	ctx := context.Background()
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "q-json.log")
	gate := filepath.Join(t.TempDir(), "gate")
	b := bundle(t, "/bin/sh", "-c", "echo one; while [ ! -e "+gate+" ]; do sleep 0.01; done; echo two; echo three >&2; exit 4")
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "q", Bundle: b, LogPath: logPath}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(readLog(t, logPath)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first line never reached the log")
		}
	}
	conn, _, err := c.Dial(ctx, &monitor.Request{Op: monitor.OpAttach, ID: "q", Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errs := demux(t, conn); out != "two\n" || errs != "three\n" {
		t.Fatalf("attached late, got %q %q", out, errs)
	}
	if st := waitExit(t, events, "q", 5*time.Second); st.ExitCode != 4 {
		t.Fatalf("exit %+v", st)
	}
	got := strings.Join(readLog(t, logPath), "")
	if got != "stdout:one\nstdout:two\nstderr:three\n" && got != "stdout:one\nstderr:three\nstdout:two\n" {
		t.Fatalf("log %q", got)
	}
}

// A process whose child keeps its output pipe open exits all the same:
// the monitor stops reading after a grace period and records the exit.
func TestExitWhilePipeHeld(t *testing.T) {
	c, dir := startMonitor(t)
	ctx := context.Background()
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "h-json.log")
	pidFile := filepath.Join(t.TempDir(), "grandchild")
	b := bundle(t, "/bin/sh", "-c", "sleep 4 & echo $! > "+pidFile+"; echo bye; exit 7")
	// The grandchild is no container of the monitor's: the test ends it.
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := time.Now()
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "h", Bundle: b, LogPath: logPath}); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, events, "h", 3500*time.Millisecond); st.ExitCode != 7 {
		t.Fatalf("exit %+v", st)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("exit announced after %v: the output was not drained", d)
	}
	if got := strings.Join(readLog(t, logPath), ""); got != "stdout:bye\n" {
		t.Fatalf("log %q", got)
	}
}

// Quiet containers cost the monitor no goroutine each: their pipes and
// exits wait in its poller.
func TestQuietContainersNoGoroutines(t *testing.T) {
	c, dir := startMonitor(t)
	ctx := context.Background()
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One first: the poller's own goroutine is not per container.
	b := bundle(t, "/bin/sleep", "30")
	ids := []string{"g0"}
	if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: "g0", Bundle: b, LogPath: filepath.Join(dir, "g0.log")}); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	const n = 30
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("g%d", i)
		ids = append(ids, id)
		if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpStart, ID: id, Bundle: b, LogPath: filepath.Join(dir, id+".log")}); err != nil {
			t.Fatal(err)
		}
	}
	if grew := runtime.NumGoroutine() - before; grew > n/3 {
		t.Errorf("%d quiet containers added %d goroutines", n, grew)
	}
	for _, id := range ids {
		if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpKill, ID: id, Signal: 9}); err != nil {
			t.Fatal(err)
		}
	}
	for range ids {
		select {
		case <-events:
		case <-time.After(10 * time.Second):
			t.Fatal("missing exit events")
		}
	}
}

// spawning is the fake runtime told apart by a CreateSpawned that tells the
// pid at once and then waits for open before Create's answer, and a Start
// that fails when failStart is set.
type spawning struct {
	*fakeruntime.Runtime
	open      chan struct{}
	failStart bool
}

func (s *spawning) CreateSpawned(ctx context.Context, id, bundle string, stdio monitor.Stdio, spawned func(pid int)) (int, *os.File, error) {
	pid, console, err := s.Runtime.Create(ctx, id, bundle, stdio)
	if err == nil {
		spawned(pid)
		<-s.open
	}
	return pid, console, err
}

func (s *spawning) Start(ctx context.Context, id string) error {
	if s.failStart {
		return fmt.Errorf("start failed")
	}
	return s.Runtime.Start(ctx, id)
}

// A start without a hold answers twice when asked (Request.Created): the
// pid as soon as the runtime forked the init, while Create goes on, then
// the start's own answer. The daemon records the run in between.
func TestStartAnswersCreatedFirst(t *testing.T) {
	for _, tc := range []struct {
		name      string
		notifier  bool // the runtime tells the pid at the fork
		hold      bool
		failStart bool
		created   bool // created is called
		wantErr   bool
	}{
		{name: "spawned", notifier: true, created: true},
		{name: "start fails after the fork", notifier: true, failStart: true, created: true, wantErr: true},
		{name: "plain runtime: once created", created: true},
		{name: "hold: one answer", notifier: true, hold: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &spawning{Runtime: fakeruntime.New(), open: make(chan struct{}), failStart: tc.failStart}
			var rt monitor.Runtime = s
			if !tc.notifier {
				rt = s.Runtime
				close(s.open)
			}
			c, _ := startMonitorWith(t, rt)
			ctx := context.Background()
			told := 0
			var resp *monitor.Response
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				resp, err = c.Start(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c1", Bundle: bundle(t, "/bin/sh", "-c", "sleep 0.3"), Hold: tc.hold},
					func(pid int) {
						told = pid
						if tc.notifier {
							close(s.open) // Create answers only once the pid was told
						}
					})
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("no answer")
			}
			if tc.hold {
				if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpRelease, ID: "c1"}); err != nil {
					t.Fatal(err)
				}
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if (told != 0) != tc.created {
				t.Fatalf("created told pid %d, want told: %v", told, tc.created)
			}
			if err == nil && tc.created && resp.Pid != told {
				t.Fatalf("answer's pid %d, created's %d", resp.Pid, told)
			}
		})
	}
}

// mountNSFDs lists this process's descriptors on mount namespaces (the
// monitor under test runs in it) as their links ("mnt:[4026531841]").
func mountNSFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "mnt:") {
			links = append(links, l)
		}
	}
	return links
}

// TestAutoRemoveHoldsMountNS: a container removed at its exit has its
// init's mount namespace held from the start to a little after the exit
// (so that the kernel's teardown of it is not in the exit's way); any
// other container has none held, and nothing is left after the exit.
func TestAutoRemoveHoldsMountNS(t *testing.T) {
	for _, tc := range []struct {
		name       string
		autoRemove bool
		hold       bool // Hold: no early pid, the init waits for OpRelease
	}{
		{name: "auto-remove", autoRemove: true},
		{name: "auto-remove, held start", autoRemove: true, hold: true},
		{name: "kept at exit", autoRemove: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := startMonitor(t)
			ctx := context.Background()
			events, err := c.Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before := len(mountNSFDs(t))
			resp, err := c.Start(ctx, &monitor.Request{Op: monitor.OpStart, ID: "c1", Bundle: bundle(t, "/bin/sh", "-c", "sleep 0.3"),
				AutoRemove: tc.autoRemove, Hold: tc.hold}, func(int) {})
			if err != nil {
				t.Fatal(err)
			}
			init, err := os.Readlink("/proc/" + strconv.Itoa(resp.Pid) + "/ns/mnt")
			if err != nil {
				t.Fatal(err)
			}
			held := mountNSFDs(t)
			want := before
			if tc.autoRemove {
				want++
				if !slices.Contains(held, init) {
					t.Errorf("held %q, not the init's %s", held, init)
				}
			}
			if len(held) != want {
				t.Errorf("%d mount namespace descriptors while it runs, want %d", len(held), want)
			}
			if tc.hold {
				if _, err := c.Call(ctx, &monitor.Request{Op: monitor.OpRelease, ID: "c1"}); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-events:
			case <-time.After(10 * time.Second):
				t.Fatal("no exit")
			}
			for deadline := time.Now().Add(2 * time.Second); len(mountNSFDs(t)) != before && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if n := len(mountNSFDs(t)); n != before {
				t.Errorf("%d mount namespace descriptors after the exit, want %d", n, before)
			}
		})
	}
}
