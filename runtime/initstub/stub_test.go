package initstub

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stubBin is the stub built by TestMain, or "" (then stubSkip says why).
var stubBin, stubSkip string

// TestMain builds the stub once, with the Makefile's flags, for every test.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "initstub-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	stubBin, stubSkip = buildStub(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildStub(dir string) (bin, skip string) {
	if runtime.GOARCH != "amd64" {
		return "", "the stub is x86-64 only"
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return "", fmt.Sprintf("no C compiler %q on PATH to build the init stub", cc)
	}
	bin = filepath.Join(dir, "estiba-init-stub")
	out, err := exec.Command(cc, "-static", "-nostdlib", "-ffreestanding", "-fno-builtin",
		"-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-O2",
		"-Wall", "-Wextra", "-Werror", "-o", bin, "c/stub.c").CombinedOutput()
	if err != nil {
		// A broken stub.c must fail the tests, not skip them.
		return "", "BUILD FAILED: " + err.Error() + "\n" + string(out)
	}
	return bin, ""
}

const unixStatSize = unsafe.Sizeof(unix.Stat_t{})

// stub is a running stub and the runtime's end of its socket.
type stub struct {
	cmd    *exec.Cmd
	sock   *os.File
	stderr bytes.Buffer
	done   chan struct{}
	err    error // cmd.Wait's, after done
}

type stubOpts struct {
	dir   string     // cwd
	extra []*os.File // fds 4, 5, ... in the stub
}

func startStub(t testing.TB, o stubOpts) *stub {
	t.Helper()
	if strings.HasPrefix(stubSkip, "BUILD FAILED") {
		t.Fatal(stubSkip)
	}
	if stubBin == "" {
		t.Skip(stubSkip)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &stub{sock: os.NewFile(uintptr(fds[0]), "runtime"), done: make(chan struct{})}
	child := os.NewFile(uintptr(fds[1]), "stub")
	s.cmd = exec.Command(stubBin, "3")
	s.cmd.Dir = o.dir
	s.cmd.Stderr = &s.stderr
	s.cmd.ExtraFiles = append([]*os.File{child}, o.extra...)
	err = s.cmd.Start()
	child.Close() // only the stub holds it now: its exec or exit is our EOF
	if err != nil {
		s.sock.Close()
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.sock.Close()
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// startStubPipe is startStub with the write end of a pipe as the stub's fd
// 4; it returns the read end, closed at the test's end.
func startStubPipe(t testing.TB) (*stub, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	s := startStub(t, stubOpts{extra: []*os.File{w}})
	w.Close()
	return s, r
}

// exit waits for the stub to end and returns its exit status.
func (s *stub) exit(t testing.TB) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stub did not exit")
	}
	st := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if st.Signaled() {
		t.Fatalf("the stub died of %v; stderr %q", st.Signal(), s.stderr.String())
	}
	return st.ExitStatus()
}

func (s *stub) sendRaw(t *testing.T, b []byte) {
	t.Helper()
	if _, err := unix.SendmsgN(int(s.sock.Fd()), b, nil, nil, unix.MSG_NOSIGNAL); err != nil {
		t.Fatal(err)
	}
}

func closeFDs(t *testing.T, fds []int) {
	t.Cleanup(func() { closeAll(fds) })
}

func wantStepError(t *testing.T, err error, want StepError) {
	t.Helper()
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a StepError %+v", err, want)
	}
	if *se != want {
		t.Fatalf("err = %+v, want %+v", *se, want)
	}
}

func TestGetpidChainedToPidfd(t *testing.T) {
	s := startStub(t, stubOpts{})
	var p Program
	p.Syscall("getpid", unix.SYS_GETPID).Out(0)
	p.Syscall("pidfd_open", unix.SYS_PIDFD_OPEN, Slot(0), Int(0)).Out(1)
	p.SendFD("send pidfd", Slot(1))
	fds, err := Exchange(s.sock, &p)
	closeFDs(t, fds)
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 1 {
		t.Fatalf("got %d fds, want 1", len(fds))
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fds[0]))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Pid:\t%d\n", s.cmd.Process.Pid); !strings.Contains(string(info), want) {
		t.Fatalf("fdinfo of the pidfd: %q, want %q", info, want)
	}
}

func TestWriteToPipe(t *testing.T) {
	s, r := startStubPipe(t)
	var p Program
	p.Syscall("write", unix.SYS_WRITE, Int(4), Str("hello"), Int(5))
	p.Syscall("close", unix.SYS_CLOSE, Int(4))
	if _, err := Exchange(s.sock, &p); err != nil {
		t.Fatal(err)
	}
	s.sock.Close()
	if st := s.exit(t); st != 1 {
		t.Fatalf("exit status %d after the socket's close, want 1", st)
	}
	got, err := os.ReadFile("/dev/fd/" + fmt.Sprint(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" {
		t.Fatalf("read %q, want %q", got, "hello")
	}
}

// TestPrograms runs one program per stub and checks the reply and the exit.
func TestPrograms(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	other := filepath.Join(dir, "g")
	for _, f := range []string{file, other} {
		if err := os.WriteFile(f, []byte("content of "+filepath.Base(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	open := func(p *Program, name, path string, slot int) *Op {
		return p.Syscall(name, unix.SYS_OPENAT, Signed(unix.AT_FDCWD), Str(path), Int(unix.O_RDONLY|unix.O_CLOEXEC)).Out(slot)
	}
	// fstats opens a and b and fstats both, for Equal.
	fstats := func(p *Program, a, b string) (Buf, Buf) {
		sa, sb := p.Buffer(int(unixStatSize)), p.Buffer(int(unixStatSize))
		open(p, "open a", a, 0)
		open(p, "open b", b, 1)
		p.Syscall("fstat a", unix.SYS_FSTAT, Slot(0), sa.Arg())
		p.Syscall("fstat b", unix.SYS_FSTAT, Slot(1), sb.Arg())
		return sa, sb
	}
	tests := []struct {
		name    string
		build   func(p *Program)
		wantErr *StepError // nil: OK
		nfds    int
	}{
		{name: "empty", build: func(p *Program) {}},
		{
			name: "openat then fstat of its slot",
			build: func(p *Program) {
				open(p, "open", file, 3)
				p.Syscall("fstat", unix.SYS_FSTAT, Slot(3), p.Buffer(int(unixStatSize)).Arg())
			},
		},
		{
			name:    "a failing op",
			build:   func(p *Program) { p.Syscall("getpid", unix.SYS_GETPID); open(p, "open missing", missing, 0) },
			wantErr: &StepError{Index: 1, Name: "open missing", Errno: unix.ENOENT},
		},
		{
			name: "allowed errno",
			build: func(p *Program) {
				open(p, "open missing", missing, 0).Allow(unix.ENOENT)
			},
		},
		{
			// The slot holds -ENOENT: close(-2) is EBADF.
			name: "allowed errno in the slot",
			build: func(p *Program) {
				open(p, "open missing", missing, 0).Allow(unix.ENOENT)
				p.Syscall("close it", unix.SYS_CLOSE, Slot(0))
			},
			wantErr: &StepError{Index: 1, Name: "close it", Errno: unix.EBADF},
		},
		{
			name: "another errno than the allowed one",
			build: func(p *Program) {
				open(p, "open missing", missing, 0).Allow(unix.EEXIST)
			},
			wantErr: &StepError{Index: 0, Name: "open missing", Errno: unix.ENOENT},
		},
		{
			name:  "equal st_dev, st_ino",
			build: func(p *Program) { a, b := fstats(p, file, file); p.Equal("same file", a, 0, b, 0, 16) },
		},
		{
			name:    "unequal st_ino",
			build:   func(p *Program) { a, b := fstats(p, file, other); p.Equal("same file", a, 0, b, 0, 16) },
			wantErr: &StepError{Index: 4, Name: "same file", Errno: unix.EXDEV},
		},
		{
			name: "checkcwd",
			build: func(p *Program) {
				p.CheckCwd("cwd", p.Buffer(4096))
			},
		},
		{
			name:    "checkcwd with a buffer too small",
			build:   func(p *Program) { p.CheckCwd("cwd", p.Buffer(2)) },
			wantErr: &StepError{Index: 0, Name: "cwd", Errno: unix.ERANGE},
		},
		{
			name: "sendfd",
			build: func(p *Program) {
				open(p, "open", file, 0)
				p.SendFD("send", Slot(0))
				p.SendFDOn("send again", Int(3), Slot(0))
			},
			nfds: 2,
		},
		{
			name:    "sendfd of a bad fd",
			build:   func(p *Program) { p.SendFD("send", Int(1000)) },
			wantErr: &StepError{Index: 0, Name: "send", Errno: unix.EBADF},
		},
		{
			name: "execve fails",
			build: func(p *Program) {
				p.Syscall("execve", unix.SYS_EXECVE, Str(missing), StrArray([]string{"x"}), StrArray(nil))
			},
			wantErr: &StepError{Index: 0, Name: "execve", Errno: unix.ENOENT},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startStub(t, stubOpts{dir: dir})
			var p Program
			tt.build(&p)
			fds, err := Exchange(s.sock, &p)
			closeFDs(t, fds)
			if tt.wantErr != nil {
				wantStepError(t, err, *tt.wantErr)
				if !errors.Is(err, tt.wantErr.Errno) {
					t.Fatalf("errors.Is(%v, %v) = false", err, tt.wantErr.Errno)
				}
				if st := s.exit(t); st != 1 {
					t.Fatalf("exit status %d, want 1", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(fds) != tt.nfds {
				t.Fatalf("got %d fds, want %d", len(fds), tt.nfds)
			}
			for _, fd := range fds {
				got := make([]byte, 64)
				n, err := unix.Pread(fd, got, 0)
				if err != nil || string(got[:n]) != "content of f" {
					t.Fatalf("the sent fd reads %q, %v", got[:n], err)
				}
			}
			// The stub waits for the next program; the close ends it.
			s.sock.Close()
			if st := s.exit(t); st != 1 {
				t.Fatalf("exit status %d after the close, want 1", st)
			}
		})
	}
}
