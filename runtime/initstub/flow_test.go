package initstub

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/testutil"
)

// Slots outlive their program; each program gets its own reply.
func TestSlotsAcrossPrograms(t *testing.T) {
	s := startStub(t, stubOpts{})
	var p1 Program
	p1.Syscall("open /", unix.SYS_OPENAT, Signed(unix.AT_FDCWD), Str("/"), Int(unix.O_PATH|unix.O_DIRECTORY)).Out(7)
	if _, err := Exchange(s.sock, &p1); err != nil {
		t.Fatal(err)
	}
	var p2 Program
	p2.SendFD("send /", Slot(7))
	fds, err := Exchange(s.sock, &p2)
	closeFDs(t, fds)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if len(fds) != 1 || unix.Fstat(fds[0], &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Fatalf("fds %v: not the directory /", fds)
	}
}

// A failure after REPLY goes to stderr, exit status 127.
func TestFailureAfterReply(t *testing.T) {
	s := startStub(t, stubOpts{})
	var p Program
	p.Syscall("getpid", unix.SYS_GETPID)
	p.Reply()
	p.Syscall("late open", unix.SYS_OPENAT, Signed(unix.AT_FDCWD), Str("/nonexistent/x"), Int(0))
	if _, err := Exchange(s.sock, &p); err != nil {
		t.Fatalf("the reply before the failure: %v", err)
	}
	if st := s.exit(t); st != 127 {
		t.Fatalf("exit status %d, want 127", st)
	}
	if got, want := s.stderr.String(), "estiba-runtime init: late open: errno 2\n"; got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
}

// The last program execs: its success is the socket's end without a reply.
func TestExecve(t *testing.T) {
	s, r := startStubPipe(t)
	var p Program
	p.Syscall("dup2 stdout", unix.SYS_DUP2, Int(4), Int(1))
	p.Syscall("execve", unix.SYS_EXECVE, Str("/bin/sh"),
		StrArray([]string{"sh", "-c", `echo "$0 $1 $FOO"; exit 0`, "zero", "one"}),
		StrArray([]string{"FOO=bar", "PATH=/usr/bin:/bin"}))
	if err := Send(s.sock, &p); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitReply(s.sock, &p); !errors.Is(err, ErrNoReply) {
		t.Fatalf("WaitReply: %v, want ErrNoReply", err)
	}
	if st := s.exit(t); st != 0 {
		t.Fatalf("exit status %d, want 0; stderr %q", st, s.stderr.String())
	}
	out := make([]byte, 100)
	n, _ := r.Read(out)
	if got, want := string(out[:n]), "zero one bar\n"; got != want {
		t.Fatalf("the exec'd process wrote %q, want %q", got, want)
	}
}

func TestExecveTrue(t *testing.T) {
	s := startStub(t, stubOpts{})
	var p Program
	p.Syscall("execve", unix.SYS_EXECVE, Str("/bin/true"), StrArray([]string{"true"}), StrArray(nil))
	if err := Send(s.sock, &p); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitReply(s.sock, &p); !errors.Is(err, ErrNoReply) {
		t.Fatalf("WaitReply: %v, want ErrNoReply", err)
	}
	if st := s.exit(t); st != 0 {
		t.Fatalf("exit status %d, want 0", st)
	}
}

// A cwd outside the root (here: the stub chroots, its cwd stays where it
// was) is what CheckCwd exists to catch.
func TestCheckCwdUnreachable(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	s := startStub(t, stubOpts{dir: "/"})
	var p Program
	p.CheckCwd("cwd before", p.Buffer(256))
	p.Syscall("chroot", unix.SYS_CHROOT, Str(root))
	p.CheckCwd("cwd after", p.Buffer(256))
	_, err := Exchange(s.sock, &p)
	wantStepError(t, err, StepError{Index: 2, Name: "cwd after", Errno: unix.ENOENT})
}

func TestEndWithoutProgram(t *testing.T) {
	s := startStub(t, stubOpts{})
	s.sock.Close()
	if st := s.exit(t); st != 1 {
		t.Fatalf("exit status %d, want 1", st)
	}
}

// mutate encodes p and changes it with f.
func mutate(t *testing.T, p *Program, f func(b []byte) []byte) []byte {
	t.Helper()
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return f(b)
}

// A malformed program is refused whole: no op runs (the write would show).
func TestMalformed(t *testing.T) {
	le := binary.LittleEndian
	// prog has a write to the pipe first (it must not run), then an op
	// whose fields the cases spoil; its args are at opArg(1, i).
	prog := func() *Program {
		var p Program
		p.Syscall("write", unix.SYS_WRITE, Int(4), Str("ran"), Int(3))
		p.Syscall("getpid", unix.SYS_GETPID).Out(1)
		return &p
	}
	op := func(i int) int { return hdrSize + opSize*i }
	arg := func(i, a int) int { return op(i) + 32 + 16*a }
	set32 := func(off int, v uint32) func(b []byte) []byte {
		return func(b []byte) []byte { le.PutUint32(b[off:], v); return b }
	}
	set64 := func(off int, v uint64) func(b []byte) []byte {
		return func(b []byte) []byte { le.PutUint64(b[off:], v); return b }
	}
	tests := []struct {
		name  string
		bytes func(t *testing.T) []byte
		index int
		errno unix.Errno
	}{
		{"a short header", func(t *testing.T) []byte { return []byte{0x45, 0x53, 0x49, 0x31, 1, 0, 0} }, -1, unix.EBADMSG},
		{"bad magic", func(t *testing.T) []byte { return mutate(t, prog(), set32(0, 0x31495346)) }, -1, unix.EBADMSG},
		{"fdslot without fds", func(t *testing.T) []byte { return mutate(t, prog(), set32(12, 1)) }, -1, unix.EBADSLT},
		{"truncated ops", func(t *testing.T) []byte {
			return mutate(t, prog(), func(b []byte) []byte { return b[:op(1)+64] })
		}, -1, unix.EBADMSG},
		{"nops too large", func(t *testing.T) []byte { return mutate(t, prog(), set32(4, 1<<30)) }, -1, unix.EBADMSG},
		{"nrelocs too large", func(t *testing.T) []byte { return mutate(t, prog(), set32(8, 1<<30)) }, -1, unix.EBADMSG},
		{"unknown kind", func(t *testing.T) []byte { return mutate(t, prog(), set32(op(1), 9)) }, 1, unix.EINVAL},
		{"kind 0", func(t *testing.T) []byte { return mutate(t, prog(), set32(op(1), 0)) }, 1, unix.EINVAL},
		{"unknown flag", func(t *testing.T) []byte { return mutate(t, prog(), set32(op(1)+4, 5)) }, 1, unix.EINVAL},
		{"name out of data", func(t *testing.T) []byte { return mutate(t, prog(), set32(op(1)+8, 1<<20)) }, 1, unix.ERANGE},
		{"name length overflows", func(t *testing.T) []byte { return mutate(t, prog(), set32(op(1)+12, 0xffffffff)) }, 1, unix.ERANGE},
		{"out slot out of range", func(t *testing.T) []byte { return mutate(t, prog(), set32(op(1)+16, 64)) }, 1, unix.EBADSLT},
		{"allow without ALLOW", func(t *testing.T) []byte { return mutate(t, prog(), set32(op(1)+20, 2)) }, 1, unix.EINVAL},
		{"syscall number", func(t *testing.T) []byte { return mutate(t, prog(), set64(op(1)+24, 4096)) }, 1, unix.EINVAL},
		{"unknown arg tag", func(t *testing.T) []byte { return mutate(t, prog(), set32(arg(1, 0), 4)) }, 1, unix.EINVAL},
		{"arg tag 33 (the C shift would wrap to 1)", func(t *testing.T) []byte { return mutate(t, prog(), set32(arg(1, 0), 33)) }, 1, unix.EINVAL},
		{"NONE with a value", func(t *testing.T) []byte { return mutate(t, prog(), set64(arg(1, 5)+8, 1)) }, 1, unix.EINVAL},
		{"DATA out of data", func(t *testing.T) []byte {
			return mutate(t, prog(), func(b []byte) []byte {
				set32(arg(1, 0), tagData)(b)
				set32(arg(1, 0)+4, 1)(b)
				return set64(arg(1, 0)+8, 1<<40)(b)
			})
		}, 1, unix.ERANGE},
		{"DATA length past the end", func(t *testing.T) []byte {
			return mutate(t, prog(), func(b []byte) []byte {
				set32(arg(1, 0), tagData)(b)
				return set32(arg(1, 0)+4, 1<<19)(b)
			})
		}, 1, unix.ERANGE},
		{"slot out of range", func(t *testing.T) []byte {
			return mutate(t, prog(), func(b []byte) []byte {
				set32(arg(1, 0), tagSlot)(b)
				return set64(arg(1, 0)+8, 64)(b)
			})
		}, 1, unix.EBADSLT},
		{"slot read before any op stores it", func(t *testing.T) []byte {
			var p Program
			p.Syscall("getpid", unix.SYS_GETPID, Slot(5))
			return mutate(t, &p, func(b []byte) []byte { return b })
		}, 0, unix.EBADSLT},
		{"slot read by the op that stores it", func(t *testing.T) []byte {
			var p Program
			p.Syscall("getpid", unix.SYS_GETPID, Slot(5)).Out(5)
			return mutate(t, &p, func(b []byte) []byte { return b })
		}, 0, unix.EBADSLT},
		{"sendfd without an fd", func(t *testing.T) []byte {
			var p Program
			p.SendFD("send", Arg{})
			return mutate(t, &p, func(b []byte) []byte { return b })
		}, 0, unix.EINVAL},
		{"equal of different lengths", func(t *testing.T) []byte {
			var p Program
			a := p.Buffer(8)
			p.Equal("eq", a, 0, a, 0, 8)
			return mutate(t, &p, set32(arg(0, 1)+4, 4))
		}, 0, unix.EINVAL},
		{"checkcwd of 0 bytes", func(t *testing.T) []byte {
			var p Program
			p.CheckCwd("cwd", p.Buffer(8))
			return mutate(t, &p, set32(arg(0, 0)+4, 0))
		}, 0, unix.EINVAL},
		{"reply with an arg", func(t *testing.T) []byte {
			var p Program
			p.Reply()
			return mutate(t, &p, set32(arg(0, 2), tagInt))
		}, 0, unix.EINVAL},
		{"reloc out of data", func(t *testing.T) []byte {
			var p Program
			p.Syscall("x", unix.SYS_GETPID, StrArray([]string{"a"}))
			return mutate(t, &p, set32(op(1), 1<<20))
		}, -1, unix.ERANGE},
		{"the same reloc twice (the pointer is no offset)", func(t *testing.T) []byte {
			var p Program
			p.Syscall("x", unix.SYS_GETPID, StrArray([]string{"a"}))
			b := mutate(t, &p, func(b []byte) []byte { return b })
			// The second reloc takes the 4 bytes of padding before data.
			copy(b[op(1)+4:], b[op(1):op(1)+4])
			le.PutUint32(b[8:], 2)
			return b
		}, -1, unix.ERANGE},
		{"reloc not aligned", func(t *testing.T) []byte {
			var p Program
			p.Syscall("x", unix.SYS_GETPID, StrArray([]string{"a"}))
			return mutate(t, &p, func(b []byte) []byte { b[op(1)]++; return b })
		}, -1, unix.ERANGE},
		{"reloc pointing out of data", func(t *testing.T) []byte {
			var p Program
			p.Syscall("x", unix.SYS_GETPID, StrArray([]string{"a"}))
			return mutate(t, &p, func(b []byte) []byte {
				dataOff := (op(1) + 4 + 7) &^ 7
				return set64(dataOff+int(le.Uint32(b[op(1):])), uint64(len(b)))(b)
			})
		}, -1, unix.ERANGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := startStubPipe(t)
			b := tt.bytes(t)
			if _, ref := decode(b, 0); ref == nil || *ref != (refusal{tt.index, tt.errno}) {
				t.Errorf("decode: %+v, want the program refused at %d with %v", ref, tt.index, tt.errno)
			}
			s.sendRaw(t, b)
			_, err := WaitReply(s.sock, prog())
			var se *StepError
			if !errors.As(err, &se) || !se.Invalid || se.Index != tt.index || se.Errno != tt.errno {
				t.Fatalf("err = %#v (%v), want the program refused at %d with %v", se, err, tt.index, tt.errno)
			}
			if st := s.exit(t); st != 1 {
				t.Fatalf("exit status %d, want 1", st)
			}
			if got, _ := r.Read(make([]byte, 8)); got != 0 {
				t.Fatal("an op of the refused program ran")
			}
		})
	}
}

// A program of MaxSize bytes crosses (past the socket's default send
// buffer) and runs; one byte more is refused.
func TestMaxSize(t *testing.T) {
	var p Program
	p.Syscall("getpid", unix.SYS_GETPID, Bytes(nil))
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	pad := MaxSize - len(b)
	p = Program{}
	p.Syscall("getpid", unix.SYS_GETPID, Bytes(make([]byte, pad)))
	s := startStub(t, stubOpts{})
	if _, err := Exchange(s.sock, &p); err != nil {
		t.Fatalf("a program of MaxSize bytes: %v", err)
	}
	big := make([]byte, MaxSize+1)
	copy(big, mutate(t, &p, func(b []byte) []byte { return b }))
	if ok := growSendBuffer(int(s.sock.Fd()), len(big)); !ok {
		t.Fatal("no room for MaxSize+1 bytes")
	}
	s.sendRaw(t, big)
	_, err = WaitReply(s.sock, &p)
	wantStepError(t, err, StepError{Index: -1, Name: "program", Errno: unix.EMSGSIZE, Invalid: true})
	p.Syscall("getpid", unix.SYS_GETPID)
	if _, err := p.Encode(); err == nil {
		t.Fatal("Encode of MaxSize+128 bytes: no error")
	}
}

// The wire format is written twice, in doc.go and atop stub.c: same text.
func TestWireFormatDocumented(t *testing.T) {
	goDoc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	cDoc, err := os.ReadFile("c/stub.c")
	if err != nil {
		t.Fatal(err)
	}
	g := commentFrom(string(goDoc), "// Wire format", "// ")
	c := commentFrom(string(cDoc), " * Wire format", " * ")
	if g == "" || g != c {
		t.Fatalf("the wire format differs:\n--- doc.go\n%s\n--- stub.c\n%s", g, c)
	}
}

// commentFrom returns the comment lines from the one starting with start,
// without their prefix.
func commentFrom(src, start, prefix string) string {
	i := strings.Index(src, start)
	if i < 0 {
		return ""
	}
	var out []string
	for _, l := range strings.Split(src[i:], "\n") {
		bare := strings.TrimRight(prefix, " ")
		switch {
		case strings.HasPrefix(l, prefix):
			out = append(out, l[len(prefix):])
		case l == bare:
			out = append(out, "")
		default:
			return strings.Join(out, "\n")
		}
	}
	return strings.Join(out, "\n")
}

// The cost of a container init by stub: start it, run a program, exec
// /bin/true, reap it. The CPU is the stub's and /bin/true's (a dynamic
// one: most of it).
func BenchmarkStubToExec(b *testing.B) {
	benchStub(b, func(s *stub) int {
		var p Program
		p.Syscall("execve", unix.SYS_EXECVE, Str("/bin/true"), StrArray([]string{"true"}), StrArray(nil))
		if err := Send(s.sock, &p); err != nil {
			b.Fatal(err)
		}
		if _, err := WaitReply(s.sock, &p); !errors.Is(err, ErrNoReply) {
			b.Fatal(err)
		}
		return 0
	})
}

// The CPU of the stub alone: start, one program, EOF, exit.
func BenchmarkStubAlone(b *testing.B) {
	benchStub(b, func(s *stub) int {
		s.sock.Close()
		return 1
	})
}

// benchStub starts a stub, runs one program, then end, which returns the
// exit status the stub must have; it reports the child's CPU per op.
func benchStub(b *testing.B, end func(*stub) int) {
	var cpu time.Duration
	for b.Loop() {
		s := startStub(b, stubOpts{})
		var p Program
		p.Syscall("getpid", unix.SYS_GETPID).Out(0)
		if _, err := Exchange(s.sock, &p); err != nil {
			b.Fatal(err)
		}
		want := end(s)
		if st := s.exit(b); st != want {
			b.Fatalf("exit status %d, want %d", st, want)
		}
		cpu += s.cmd.ProcessState.UserTime() + s.cmd.ProcessState.SystemTime()
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "child-cpu-µs/op")
}

// SECCOMP loads a filter: here one that fails getppid with EPERM (BPF:
// load the syscall number, compare, return ERRNO or ALLOW), which a later
// op then meets (allowed, its slot gets -EPERM), and the program goes on.
func TestSeccomp(t *testing.T) {
	s := startStub(t, stubOpts{})
	const (
		ldNr     = 0x20 // BPF_LD|BPF_W|BPF_ABS, k=0: seccomp_data.nr
		jeq      = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
		ret      = 0x06 // BPF_RET|BPF_K
		allow    = 0x7fff0000
		errEPERM = 0x00050000 | 1
	)
	ins := [][4]uint32{{ldNr, 0, 0, 0}, {jeq, 0, 1, unix.SYS_GETPPID}, {ret, 0, 0, errEPERM}, {ret, 0, 0, allow}}
	var filter []byte
	for _, i := range ins {
		filter = append(filter, byte(i[0]), byte(i[0]>>8), byte(i[1]), byte(i[2]), byte(i[3]), byte(i[3]>>8), byte(i[3]>>16), byte(i[3]>>24))
	}
	var p Program
	p.Syscall("no_new_privs", unix.SYS_PRCTL, Int(unix.PR_SET_NO_NEW_PRIVS), Int(1), Int(0), Int(0), Int(0))
	p.Seccomp("seccomp", 0, filter)
	p.Syscall("getppid", unix.SYS_GETPPID).Allow(unix.EPERM).Out(0)
	p.Syscall("getppid again", unix.SYS_GETPPID)
	_, err := Exchange(s.sock, &p)
	wantStepError(t, err, StepError{Index: 3, Name: "getppid again", Errno: unix.EPERM})

	var bad Program
	bad.Seccomp("seccomp", 0, filter[:5])
	if _, err := bad.Encode(); err == nil {
		t.Fatal("Encode took a filter of 5 bytes")
	}
}

// A signal that ends an ordinary process ends the stub (as pid 1 of a pid
// namespace it would otherwise ignore it), with status 128+signal.
func TestSignalEndsStub(t *testing.T) {
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGHUP} {
		s := startStub(t, stubOpts{})
		// A program answered: the stub has set its handlers up.
		var p Program
		p.Syscall("getpid", unix.SYS_GETPID)
		if _, err := Exchange(s.sock, &p); err != nil {
			t.Fatal(err)
		}
		if err := s.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if st := s.exit(t); st != 128+int(sig) {
			t.Errorf("%v: exit status %d, want %d", sig, st, 128+int(sig))
		}
	}
}

// Fds passed with a program land in its slots, in order, close-on-exec; a
// header that names no slot for them, or too high a slot, is refused.
func TestPassFD(t *testing.T) {
	pipe := func() (r, w *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	s := startStub(t, stubOpts{})
	r1, w1 := pipe()
	r2, w2 := pipe()
	var p Program
	a, b := p.PassFD(int(w1.Fd())), p.PassFD(int(w2.Fd()))
	p.Syscall("write a", unix.SYS_WRITE, a, Str("a"), Int(1))
	p.Syscall("write b", unix.SYS_WRITE, b, Str("b"), Int(1))
	if _, err := Exchange(s.sock, &p); err != nil {
		t.Fatal(err)
	}
	if n := stubFDFlags(t, s.cmd.Process.Pid, w1); n&unix.O_CLOEXEC == 0 {
		t.Errorf("the stub's copy has flags %#o, not close-on-exec", n)
	}
	var q Program
	q.Syscall("close a", unix.SYS_CLOSE, a)
	q.Syscall("close b", unix.SYS_CLOSE, b)
	if _, err := Exchange(s.sock, &q); err != nil {
		t.Fatal(err)
	}
	w1.Close()
	w2.Close()
	for _, c := range []struct {
		r    *os.File
		want string
	}{{r1, "a"}, {r2, "b"}} {
		got, err := io.ReadAll(c.r)
		if err != nil || string(got) != c.want {
			t.Fatalf("read %q, %v; want %q and EOF (the stub's copy closed)", got, err, c.want)
		}
	}

	for _, tc := range []struct {
		name   string
		fdslot uint32
		nfds   int
	}{
		{"fds without fdslot", 0, 1},
		{"fdslot too high for them", NumSlots - 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStub(t, stubOpts{})
			var p Program
			p.Syscall("getpid", unix.SYS_GETPID)
			b, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			binary.LittleEndian.PutUint32(b[12:], tc.fdslot)
			_, w := pipe()
			fds := make([]int, tc.nfds)
			for i := range fds {
				fds[i] = int(w.Fd())
			}
			if err := unix.Sendmsg(int(s.sock.Fd()), b, unix.UnixRights(fds...), nil, 0); err != nil {
				t.Fatal(err)
			}
			_, err = WaitReply(s.sock, &p)
			var se *StepError
			if !errors.As(err, &se) || !se.Invalid || se.Errno != unix.EBADSLT {
				t.Fatalf("got %v, want an INVALID reply with EBADSLT", err)
			}
		})
	}
}

// stubFDFlags returns the open flags of process pid's fd for the same file
// as f (fdinfo's "flags:", octal).
func stubFDFlags(t *testing.T, pid int, f *os.File) int {
	t.Helper()
	want, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	dir := "/proc/" + strconv.Itoa(pid)
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, _ := os.Readlink(dir + "/fd/" + e.Name()); l != want {
			continue
		}
		info, err := os.ReadFile(dir + "/fdinfo/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
				if err != nil {
					t.Fatal(err)
				}
				return int(n)
			}
		}
	}
	t.Fatalf("no fd of process %d is %s", pid, want)
	return 0
}
