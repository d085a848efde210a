package seccomp

import (
	"math/rand/v2"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestX32SharedTree compares, call by call, filters whose x32 part reuses
// x86_64's tree (x32OnX86_64Tree) with the same profiles compiled with a
// tree of x32's own: every x86_64 and i386 call, and every x32 call the
// kernel's x32 table has, gets the same verdict. x32 numbers below 512 that
// its table lacks (sys_ni_syscall there) get x86_64's verdict instead, and
// numbers neither names a refusal either way.
func TestX32SharedTree(t *testing.T) {
	// The capabilities Docker's profile has rules for.
	all := append([]string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_BOOT", "CAP_SYSLOG",
		"CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_RAWIO", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_BPF",
		"CAP_PERFMON", "CAP_CHECKPOINT_RESTORE", "CAP_NET_ADMIN"}, dockerCaps...)
	profiles := map[string]*specs.LinuxSeccomp{
		"docker":          dockerProfile(t, dockerCaps),
		"docker, no caps": dockerProfile(t, nil),
		"docker, all":     dockerProfile(t, all),
		"denylist": {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"ptrace", "kexec_load", "ioctl"}, Action: specs.ActErrno},
				{Names: []string{"personality"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpNotEqual}}},
			}},
		"kill by default": {DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "exit", "rt_sigaction", "clone"}, Action: specs.ActAllow}}},
	}
	named := map[uint32]bool{}
	for _, e := range syscallsX32 {
		named[e.nr&^x32SyscallBit] = true
	}
	for name, sp := range profiles {
		t.Run(name, func(t *testing.T) {
			prof, err := parseProfile(sp)
			if err != nil {
				t.Fatal(err)
			}
			list, err := arches(sp.Architectures)
			if err != nil {
				t.Fatal(err)
			}
			shared := generateShared(prof, list, true)
			own := generateShared(prof, list, false)
			if len(shared) >= len(own) {
				t.Errorf("shared tree: %d instructions, own x32 tree: %d", len(shared), len(own))
			}
			t.Logf("%d instructions, %d with x32's own tree", len(shared), len(own))
			for _, c := range x32ShareCalls(sp) {
				got, _ := interpret(shared, c)
				want, _ := interpret(own, c)
				if got == want {
					continue
				}
				n := c.nr &^ x32SyscallBit
				x32 := c.arch == auditArchX86_64 && c.nr&x32SyscallBit != 0 && c.nr != 0xffffffff
				switch {
				case x32 && c.nr < x32Low && !named[n]:
					// No call on x32: x86_64's verdict.
					c64 := c
					c64.nr = n
					if v64, _ := interpret(own, c64); got != v64 {
						t.Errorf("x32 nr %d (none on x32) %v: %#x, want x86_64's %#x", n, c.args, got, v64)
					}
				case x32 && c.nr < x32Low && refuses(got) && refuses(want):
				default:
					t.Errorf("arch %#x nr %#x args %v: %#x, own x32 tree %#x", c.arch, c.nr, c.args, got, want)
				}
			}
		})
	}
}

// refuses tells whether a verdict keeps the call from running.
func refuses(v uint32) bool {
	return v != RetAllow && v != RetLog && v&^RetData != RetTrace
}

// x32ShareCalls is every number of each arch below 1100 (and a few beyond),
// each with arguments at and around the profile's condition values, and a
// few random ones.
func x32ShareCalls(p *specs.LinuxSeccomp) []call {
	vals := []uint64{0, 1, 0xffffffff, 1 << 32, ^uint64(0)}
	for _, s := range p.Syscalls {
		for _, a := range s.Args {
			vals = append(vals, a.Value, a.Value+1, a.Value-1, a.Value|1<<40, a.ValueTwo)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		vals = append(vals, r.Uint64(), uint64(r.Uint32()))
	}
	var argsets [][6]uint64
	for _, v := range vals {
		for i := range 3 {
			var a [6]uint64
			a[i] = v
			argsets = append(argsets, a)
		}
	}
	nrs := []uint32{0xffffffff, 0x7fffffff, 0x80000000, x32SyscallBit | 0x20000000, x32SyscallBit - 1}
	for n := uint32(0); n < 1100; n++ {
		nrs = append(nrs, n, n|x32SyscallBit)
	}
	var calls []call
	for _, arch := range []uint32{auditArchX86_64, auditArchI386, 0x12345678} {
		for _, n := range nrs {
			for _, a := range argsets {
				calls = append(calls, call{arch: arch, nr: n, args: a})
			}
		}
	}
	return calls
}

// TestX32Shares: x32 keeps its own tree when a number both tables have is
// decided differently on the two.
func TestX32Shares(t *testing.T) {
	read := syscallsX86_64.nr("read")
	allow := entry{nr: read, uncond: RetAllow, hasUncond: true}
	deny := entry{nr: read, uncond: RetErrno | 1, hasUncond: true}
	onX32 := func(e entry) entry { e.nr |= x32SyscallBit; return e }
	ioctl := entry{nr: syscallsX86_64.nr("ioctl"), uncond: RetAllow, hasUncond: true} // 16: none on x32
	argAlt := alt{act: RetAllow, conds: []cond{{arg: 0, op: specs.OpEqualTo, val: 1}}}
	for _, tc := range []struct {
		name      string
		e64, e32  []entry
		wantShare bool
	}{
		{"same", []entry{allow}, []entry{onX32(allow)}, true},
		{"x86_64-only number", []entry{allow, ioctl}, []entry{onX32(allow)}, true},
		{"other action", []entry{allow}, []entry{onX32(deny)}, false},
		{"x86_64 only", []entry{allow}, nil, false},
		{"x32 only", nil, []entry{onX32(allow)}, false},
		{"other arguments", []entry{{nr: read, alts: []alt{argAlt}}}, []entry{onX32(entry{nr: read})}, false},
		{"same arguments", []entry{{nr: read, alts: []alt{argAlt}}}, []entry{onX32(entry{nr: read, alts: []alt{argAlt}})}, true},
	} {
		pl64 := &plan{a: archX86_64, entries: tc.e64}
		pl32 := &plan{a: archX32, entries: tc.e32}
		if got := x32Shares(pl64, pl32, RetErrno|1); got != tc.wantShare {
			t.Errorf("%s: x32Shares = %v, want %v", tc.name, got, tc.wantShare)
		}
	}
}
