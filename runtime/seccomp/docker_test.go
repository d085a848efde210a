package seccomp

import (
	"testing"

	"github.com/estiba/estiba/runtime/seccomp/defaultprofile"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func dockerProfile(t testing.TB, caps []string) *specs.LinuxSeccomp {
	t.Helper()
	p, err := defaultprofile.Docker(caps)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDockerProfile(t *testing.T) {
	const (
		cloneNewUser = 0x10000000
		cloneThread  = 0x00010000 | 0x00000100 | 0x00000200 | 0x00000400 | 0x00000800 // THREAD|VM|FS|FILES|SIGHAND
		sigchld      = 17
		eperm        = RetErrno | 1
	)
	i386 := func(n uint32, args ...uint64) call {
		c := call{arch: auditArchI386, nr: n}
		copy(c.args[:], args)
		return c
	}
	tests := []struct {
		name  string
		caps  []string
		c     call
		want  uint32
		label string
	}{
		{"read", dockerCaps, x64(nr(t, "read")), RetAllow, ""},
		{"openat", dockerCaps, x64(nr(t, "openat")), RetAllow, ""},
		{"faccessat2", dockerCaps, x64(nr(t, "faccessat2")), RetAllow, ""},
		{"mount", dockerCaps, x64(nr(t, "mount")), eperm, ""},
		{"mount with SYS_ADMIN", append(dockerCaps, "CAP_SYS_ADMIN"), x64(nr(t, "mount")), RetAllow, ""},
		{"reboot", dockerCaps, x64(nr(t, "reboot")), eperm, ""},
		{"kexec_load", dockerCaps, x64(nr(t, "kexec_load")), eperm, ""},
		{"clone fork", dockerCaps, x64(nr(t, "clone"), sigchld), RetAllow, ""},
		{"clone thread", dockerCaps, x64(nr(t, "clone"), cloneThread), RetAllow, ""},
		{"clone newuser", dockerCaps, x64(nr(t, "clone"), cloneNewUser|sigchld), eperm, ""},
		{"clone newuser with SYS_ADMIN", append(dockerCaps, "CAP_SYS_ADMIN"), x64(nr(t, "clone"), cloneNewUser|sigchld), RetAllow, ""},
		{"clone3 falls back", dockerCaps, x64(nr(t, "clone3")), RetErrno | 38, ""},
		{"personality 0", dockerCaps, x64(nr(t, "personality"), 0), RetAllow, ""},
		{"personality 0xffffffff", dockerCaps, x64(nr(t, "personality"), 0xffffffff), RetAllow, ""},
		{"personality 1", dockerCaps, x64(nr(t, "personality"), 1), eperm, ""},
		{"socket AF_UNIX", dockerCaps, x64(nr(t, "socket"), 1), RetAllow, ""},
		{"socket AF_INET6", dockerCaps, x64(nr(t, "socket"), 10), RetAllow, ""},
		{"socket AF_ALG", dockerCaps, x64(nr(t, "socket"), 38), eperm, ""},
		{"socket AF_VSOCK", dockerCaps, x64(nr(t, "socket"), 40), eperm, ""},
		{"socket AF_VSOCK, high word set", dockerCaps, x64(nr(t, "socket"), 1<<32|40), eperm, ""},
		{"syscall newer than the profile", dockerCaps, x64(2000), RetErrno | 38, ""},
		{"i386 read", dockerCaps, i386(syscallsX86.nr("read")), RetAllow, ""},
		{"i386 mount", dockerCaps, i386(syscallsX86.nr("mount")), eperm, ""},
		{"i386 socketcall", dockerCaps, i386(syscallsX86.nr("socketcall")), RetAllow, ""},
		{"x32 read", dockerCaps, x64(x32SyscallBit | 0), RetAllow, ""},
		{"x32 ioctl", dockerCaps, x64(x32SyscallBit | 514), RetAllow, ""},
		{"aarch64", dockerCaps, call{arch: 0xc00000b7, nr: 63}, RetKillProcess, ""},
	}
	progs := map[int]*vm{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := progs[len(tt.caps)]
			if v == nil {
				prog := compile(t, dockerProfile(t, tt.caps))
				if len(prog.Instructions) > MaxInstructions {
					t.Fatalf("%d instructions", len(prog.Instructions))
				}
				v = newVM(t, prog)
				progs[len(tt.caps)] = v
			}
			if got := v.run(tt.c); got != tt.want {
				t.Errorf("%#x, want %#x", got, tt.want)
			}
		})
	}
}

// TestInterpreterAgrees checks countSteps' interpreter against x/net/bpf's
// VM on the Docker profile, so the step counts the benchmark reports are
// those of the real program.
func TestInterpreterAgrees(t *testing.T) {
	prog := compile(t, dockerProfile(t, dockerCaps))
	v := newVM(t, prog)
	for _, a := range []uint32{auditArchX86_64, auditArchI386} {
		for n := uint32(0); n < 600; n++ {
			for _, arg := range []uint64{0, 0x10000000, 0xffffffff} {
				c := call{arch: a, nr: n, args: [6]uint64{arg}}
				got, _ := interpret(prog.Instructions, c)
				if want := v.run(c); got != want {
					t.Fatalf("arch %#x nr %d: interpreter %#x, VM %#x", a, n, got, want)
				}
			}
		}
	}
}

// interpret runs the subset of classic BPF Compile emits and counts the
// instructions executed.
func interpret(prog []bpf.RawInstruction, c call) (ret uint32, steps int) {
	var acc uint32
	for pc := 0; ; pc++ {
		ins := prog[pc]
		steps++
		switch ins.Op {
		case opLdAbsW:
			switch {
			case ins.K == offNr:
				acc = c.nr
			case ins.K == offArch:
				acc = c.arch
			default:
				i := (ins.K - offArgs) / 8
				acc = uint32(c.args[i] >> (8 * (ins.K % 8)))
			}
		case opAndK:
			acc &= ins.K
		case opJa:
			pc += int(ins.K)
		case jeq, jgt, jge:
			ok := ins.Op == jeq && acc == ins.K || ins.Op == jgt && acc > ins.K || ins.Op == jge && acc >= ins.K
			if ok {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case opRet:
			return ins.K, steps
		default:
			panic("unexpected opcode")
		}
	}
}

func BenchmarkCompileDocker(b *testing.B) {
	p := dockerProfile(b, dockerCaps)
	var prog *Program
	for b.Loop() {
		var err error
		if prog, err = Compile(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(prog.Instructions)), "insns")
	// Instructions the kernel runs per syscall, over every x86_64 syscall.
	total, worst := 0, 0
	names := sortedNames(syscallsX86_64)
	for _, name := range names {
		_, steps := interpret(prog.Instructions, x64(syscallsX86_64.nr(name)))
		total += steps
		worst = max(worst, steps)
	}
	b.ReportMetric(float64(total)/float64(len(names)), "steps/syscall")
	b.ReportMetric(float64(worst), "max-steps")
}
