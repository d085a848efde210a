package initproc

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/prefault"
	"github.com/estiba/estiba/internal/timerslack"
	"github.com/estiba/estiba/runtime/hooks"
	"github.com/estiba/estiba/runtime/rootfs"
	"github.com/estiba/estiba/runtime/seccomp"
)

// Main is init's entry point: the runtime binary, or the dedicated init
// binary (cmd/estiba-init), calls it first thing when os.Args[1] is Arg.
// version is the calling binary's build version: when the runtime passes
// its own as os.Args[2], init refuses to run from a binary of another build,
// whose sync protocol may differ. It never returns: it execs the container
// process or exits non-zero after reporting the error to the parent.
func Main(version string) { start(version, false) }

// MainInInit is Main for a binary that is init only (cmd/estiba-init),
// called from a package init function of its main package when os.Args[1]
// is Arg. While packages initialize, the Go runtime keeps the main
// goroutine on the main thread (runtime.main locks them together), which
// is what init needs; runtime.LockOSThread would also start Go's template
// thread, a clean thread kept to clone new ones from, one more thread per
// container start (see run for when init still wants it).
func MainInInit(version string) { start(version, true) }

func start(version string, inPkgInit bool) {
	prefault.Heap(heapPrefault)
	// Not dumpable, from here until execve (which restores it for the
	// container's process): /proc/1/fd and ptrace of init then need
	// CAP_SYS_PTRACE over it. Between create and start, init runs with
	// the container's credentials but holds O_PATH fds of the host's
	// exec fifo and of the rootfs; a process exec'd into the created
	// container could otherwise reopen the fifo through /proc/1/fd and
	// start the container behind the runtime's back. The same holds for
	// an exec's init, which sits in the host's mount namespace until it
	// joins the container's.
	//
	// The window before this line (exec of the runtime binary, Go's
	// runtime start) is harmless. For create, init is pid 1 of a new pid
	// namespace from its clone, but nothing else lives there yet, and
	// exec needs the state "created", which is saved only after init
	// reports ready, long after this. For exec, container processes can
	// see it, but until prepareExec drops them it holds every capability,
	// and /proc/<pid>/fd or ptrace of a process whose capabilities are not
	// a subset of the caller's needs CAP_SYS_PTRACE anyway. An exec into a
	// container with its own user namespace starts here as that
	// namespace's root (through the trampoline, see
	// runtime/container/trampoline.go), dumpable until the line below; a
	// static runtime binary has been exec'd in the container's mount
	// namespace already, so that in this window it reaches nothing the
	// container's root cannot (a dynamic one, as in tests, joins it in
	// runExec).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "estiba-runtime init: prctl dumpable: %v\n", err)
		os.Exit(2)
	}
	// Capabilities, the bounding set, no_new_privs, seccomp filters and
	// (with raw syscalls) credentials are per thread, and execve keeps only
	// the calling thread: all of init runs on this one thread.
	if !inPkgInit {
		runtime.LockOSThread()
	}
	fd, err := strconv.Atoi(os.Getenv(EnvSync))
	if err != nil {
		fmt.Fprintln(os.Stderr, "estiba-runtime init: must be started by the runtime")
		os.Exit(2)
	}
	os.Unsetenv(EnvSync)
	sock := os.NewFile(uintptr(fd), "sync")
	s := &syncer{sock: sock}
	if err := run(s, version, inPkgInit); err != nil {
		if !s.done {
			WriteMsg(sock, MsgError, []byte(err.Error()))
		} else {
			fmt.Fprintf(os.Stderr, "estiba-runtime init: %v\n", err)
		}
		os.Exit(1)
	}
}

type syncer struct {
	sock *os.File
	// done is set once "ready" is sent: later errors go to stderr.
	done bool
}

// recv reads the next message, which must be of type want, and returns
// its payload.
func (s *syncer) recv(want byte) ([]byte, error) {
	typ, payload, err := ReadMsg(s.sock)
	if err != nil {
		return nil, fmt.Errorf("read from runtime: %w", err)
	}
	if typ != want {
		return nil, fmt.Errorf("expected message %q from runtime, got %q", want, typ)
	}
	return payload, nil
}

func (s *syncer) send(typ byte) error {
	if err := WriteMsg(s.sock, typ, nil); err != nil {
		return fmt.Errorf("write to runtime: %w", err)
	}
	return nil
}

// prepareAndReport does everything up to the final execve that can fail,
// resolves the program (so that a missing binary fails create or exec, not
// start), and only then tells the runtime it is ready: once ready is sent,
// no error can reach the runtime any more.
func (s *syncer) prepareAndReport(spec *specs.Spec, p *specs.Process, cfg *Config, prog *seccomp.Program, listener int) (string, error) {
	if err := prepareExec(spec, p, cfg, prog, listener); err != nil {
		return "", err
	}
	path, err := LookPath(p.Args[0], p.Env)
	if err != nil {
		return "", err
	}
	s.done = true
	if err := s.send(MsgReady); err != nil {
		return "", err
	}
	s.sock.Close()
	return path, nil
}

func run(s *syncer, version string, inPkgInit bool) error {
	b, err := s.recv(MsgConfig)
	if err != nil {
		return err
	}
	// Checked before decoding: another build's config may not decode.
	if len(os.Args) > 2 && os.Args[2] != version {
		return fmt.Errorf("init binary is version %q, the runtime %q: install both from one build", version, os.Args[2])
	}
	cfg := new(Config)
	if err := cfg.Unmarshal(b); err != nil {
		return fmt.Errorf("config from runtime: %w", err)
	}
	if inPkgInit && hooksInInit(cfg) {
		// Go starts a thread when a goroutine must run while this one
		// waits, here for a hook's process. Without the template thread
		// it clones this thread as it is then: the container's
		// credentials, rlimits and seccomp filter, under which clone may
		// fail (RLIMIT_NPROC, a filter refusing it) and Go aborts. Only
		// hooks make init wait on other goroutines (its own waits are
		// blocking syscalls, which leave threads to sysmon), so only with
		// hooks is the template started, now, while this thread is still
		// as the runtime made it.
		runtime.LockOSThread()
	}
	if cfg.Exec {
		return runExec(s, cfg)
	}
	return runCreate(s, cfg)
}

// hooksInInit reports whether init itself runs hooks (createContainer,
// startContainer); the runtime runs the others.
func hooksInInit(cfg *Config) bool {
	h := cfg.Spec.Hooks
	return !cfg.Exec && h != nil && len(h.CreateContainer)+len(h.StartContainer) > 0
}

// runCreate sets the container up. The order is the kernel's and the spec's:
//   - the cgroup namespace first: the parent has just placed us in the
//     container's cgroup, which becomes the namespace's root;
//   - host-side /proc writes (sysctl, oom_score_adj) through the host's
//     procfs, before the container's mounts exist to fake it;
//   - the rootfs; then the prestart/createRuntime hooks (parent) and
//     createContainer hooks (here), which the spec places after the mounts
//     and before pivot_root;
//   - pivot_root, then everything resolved inside the new root (console,
//     cwd), then the privilege drops, seccomp last so that it does not
//     filter the runtime's own setup.
func runCreate(s *syncer, cfg *Config) error {
	spec := cfg.Spec
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	prog, err := compileSeccomp(spec)
	if err != nil {
		return err
	}
	if err := HostProcWrites(spec, "self", nil); err != nil {
		return err
	}
	if err := SetUTS(spec); err != nil {
		return err
	}
	if !cfg.NoNewKeyring {
		if err := newSessionKeyring(cfg.ID); err != nil {
			return err
		}
	}
	root, err := rootfs.Setup(spec, cfg.Bundle, rootfs.Options{NoPivot: cfg.NoPivot, InUserNS: cfg.InUserNS})
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	// Opened by path now, while the state directory is still visible;
	// reopened for writing through /proc/self/fd after pivot_root. With
	// unix.Open: os.OpenFile would start Go's network poller for it (see
	// openat.ReadFile).
	fifoFD, err := unix.Open(cfg.FifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("exec fifo: open %s: %w", cfg.FifoPath, err)
	}
	fifo := os.NewFile(uintptr(fifoFD), cfg.FifoPath)
	listener, err := dialListener(spec)
	if err != nil {
		return err
	}
	if err := s.send(MsgMounted); err != nil {
		return err
	}
	if _, err := s.recv(MsgContinue); err != nil {
		return err
	}
	if spec.Hooks != nil {
		if err := hooks.Run("createContainer", spec.Hooks.CreateContainer, &cfg.State); err != nil {
			return err
		}
	}
	if err := root.Pivot(); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	p := spec.Process
	if p == nil {
		// No process: wait to be killed by start (or delete).
		s.done = true
		s.send(MsgReady)
		for {
			unix.Pause()
		}
	}
	if p.Terminal {
		if err := setupConsole(cfg.ConsoleFD, root); err != nil {
			return err
		}
	}
	path, err := s.prepareAndReport(spec, p, cfg, prog, listener)
	if err != nil {
		return err
	}
	if err := waitStart(fifo); err != nil {
		return err
	}
	if spec.Hooks != nil {
		st := cfg.State
		st.Status = specs.StateRunning
		if err := hooks.Run("startContainer", spec.Hooks.StartContainer, &st); err != nil {
			return err
		}
	}
	return finishExec(spec, p, cfg, prog, listener, path)
}

// waitStart blocks until `start` opens the fifo for reading, then tells it
// so with one byte. The fifo is reopened for writing through
// /proc/self/fd (only an O_PATH fd of it crossed pivot_root). That path is
// in the container's hands by now, and init holds only the container's
// privileges, so instead of trusting it we check that what opened is the
// fifo itself (same device and inode).
func waitStart(fifo *os.File) error {
	var want, got unix.Stat_t
	if err := unix.Fstat(int(fifo.Fd()), &want); err != nil {
		return fmt.Errorf("exec fifo: %w", err)
	}
	// Left open on success: it closes on exec, which tells start the
	// process runs (see container.releaseInit).
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(int(fifo.Fd())), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	fifo.Close()
	if err := unix.Fstat(fd, &got); err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		unix.Close(fd)
		return fmt.Errorf("open exec fifo: /proc/self/fd led elsewhere")
	}
	if _, err := unix.Write(fd, []byte{0}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("write exec fifo: %w", err)
	}
	return nil
}

// finishExec is the tail shared by create and exec: seccomp, closing every
// fd the container must not inherit, execve.
func finishExec(spec *specs.Spec, p *specs.Process, cfg *Config, prog *seccomp.Program, listener int, path string) error {
	// execve keeps the calling thread's timer slack: set it on the thread
	// that execs (all of init runs on it, see start), before the filter,
	// which may not allow prctl. No runtime.LockOSThread here: from
	// MainInInit it would start Go's template thread now, cloned from this
	// thread with the container's credentials and rlimits (see run).
	if err := timerslack.Restore(cfg.TimerSlack); err != nil {
		return fmt.Errorf("timer slack: %w", err)
	}
	// The filter goes last so that it filters the container's process,
	// not the runtime's setup; execve is all that follows.
	if prog != nil && p.NoNewPrivileges {
		if err := installSeccomp(prog, spec, cfg, listener); err != nil {
			return err
		}
	}
	if err := unix.Exec(path, p.Args, p.Env); err != nil {
		return fmt.Errorf("exec %s: %w", p.Args[0], err)
	}
	return nil
}

func compileSeccomp(spec *specs.Spec) (*seccomp.Program, error) {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil, nil
	}
	prog, err := seccomp.Compile(spec.Linux.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return prog, nil
}
