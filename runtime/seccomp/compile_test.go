package seccomp

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestActions(t *testing.T) {
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(13),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"kill"}, Action: specs.ActKill},
			{Names: []string{"tkill"}, Action: specs.ActKillThread},
			{Names: []string{"tgkill"}, Action: specs.ActKillProcess},
			{Names: []string{"getpid"}, Action: specs.ActTrap},
			{Names: []string{"getppid"}, Action: specs.ActErrno},
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(2)},
			{Names: []string{"rmdir"}, Action: specs.ActTrace},
			{Names: []string{"chdir"}, Action: specs.ActTrace, ErrnoRet: uintp(7)},
			{Names: []string{"uname"}, Action: specs.ActLog},
			{Names: []string{"mount"}, Action: specs.ActNotify},
		},
	}
	prog := compile(t, p)
	if !prog.Notify || prog.Flags != FlagNewListener {
		t.Errorf("notify %v flags %#x", prog.Notify, prog.Flags)
	}
	v := newVM(t, prog)
	for name, want := range map[string]uint32{
		"read": RetAllow, "write": RetAllow, "kill": RetKillThread, "tkill": RetKillThread,
		"tgkill": RetKillProcess, "getpid": RetTrap, "getppid": RetErrno | 1, "mkdir": RetErrno | 2,
		"rmdir": RetTrace | 1, "chdir": RetTrace | 7, "uname": RetLog, "mount": RetUserNotif,
		"open": RetErrno | 13, "close": RetErrno | 13, "getuid": RetErrno | 13,
	} {
		if got := v.run(x64(nr(t, name))); got != want {
			t.Errorf("%s: %#x, want %#x", name, got, want)
		}
	}
	// Above the highest syscall the profile names (tgkill, 234): ENOSYS.
	for _, n := range []uint32{235, 435, 439, 1000, 0x3fffffff, 0xffffffff} {
		if got := v.run(x64(n)); got != RetErrno|38 {
			t.Errorf("nr %d: %#x, want ENOSYS", n, got)
		}
	}
}

func TestArch(t *testing.T) {
	allowRead := []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}
	tests := []struct {
		name   string
		arches []specs.Arch
		calls  map[call]uint32
	}{
		{"native only", nil, map[call]uint32{
			{arch: auditArchX86_64, nr: 0}:                    RetAllow,
			{arch: auditArchX86_64, nr: 1}:                    RetErrno | 38, // above read: stub
			{arch: auditArchI386, nr: 3}:                      RetKillProcess,
			{arch: 0xc00000b7, nr: 63}:                        RetKillProcess, // aarch64
			{arch: auditArchX86_64, nr: x32SyscallBit}:        RetKillProcess,
			{arch: auditArchX86_64, nr: x32SyscallBit | 0x10}: RetKillProcess,
		}},
		{"x86 family", []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64}, map[call]uint32{
			{arch: auditArchX86_64, nr: 0}:                 RetAllow,
			{arch: auditArchI386, nr: 3}:                   RetAllow,
			{arch: auditArchI386, nr: 0}:                   RetErrno | 1,
			{arch: auditArchI386, nr: 4}:                   RetErrno | 38,
			{arch: auditArchX86_64, nr: x32SyscallBit}:     RetAllow,
			{arch: auditArchX86_64, nr: x32SyscallBit | 1}: RetErrno | 38,
			{arch: auditArchX86_64, nr: 0xffffffff}:        RetErrno | 38,
			{arch: 0xc00000b7, nr: 63}:                     RetKillProcess,
			{arch: auditArchI386, nr: x32SyscallBit | 3}:   RetErrno | 38,
			{arch: auditArchX86_64, nr: x32SyscallBit - 1}: RetErrno | 38,
			{arch: auditArchX86_64 | 1, nr: x32SyscallBit}: RetKillProcess,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVM(t, compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: tt.arches, Syscalls: allowRead}))
			for c, want := range tt.calls {
				if got := v.run(c); got != want {
					t.Errorf("arch %#x nr %#x: %#x, want %#x", c.arch, c.nr, got, want)
				}
			}
		})
	}
}

func TestX32Numbers(t *testing.T) {
	// ioctl is 16 on x86_64 and 514 on x32; 16 does not exist on x32: the
	// kernel's x32 table has sys_ni_syscall there, so x32 shares x86_64's
	// tree below 512 and 16 gets x86_64's verdict (see x32Shares).
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"ioctl", "getpid"}, Action: specs.ActAllow}}}
	v := newVM(t, compile(t, p))
	for n, want := range map[uint32]uint32{
		16: RetAllow, 39: RetAllow, 514 | x32SyscallBit: RetAllow, 39 | x32SyscallBit: RetAllow,
		16 | x32SyscallBit: RetAllow, 515 | x32SyscallBit: RetErrno | 38,
	} {
		if got := v.run(x64(n)); got != want {
			t.Errorf("nr %#x: %#x, want %#x", n, got, want)
		}
	}
}

// refCompare is the meaning of a condition on a 64-bit argument.
func refCompare(op specs.LinuxSeccompOperator, arg, v, v2 uint64) bool {
	switch op {
	case specs.OpEqualTo:
		return arg == v
	case specs.OpNotEqual:
		return arg != v
	case specs.OpLessThan:
		return arg < v
	case specs.OpLessEqual:
		return arg <= v
	case specs.OpGreaterThan:
		return arg > v
	case specs.OpGreaterEqual:
		return arg >= v
	case specs.OpMaskedEqual:
		return arg&v == v2
	}
	panic(op)
}

var ops = []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan,
	specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}

// boundaries are values around the 32-bit word boundary and the ends.
var boundaries = []uint64{0, 1, 2, 0x7fffffff, 0xfffffffe, 0xffffffff, 0x100000000, 0x100000001,
	0x1fffffffe, 0x1ffffffff, 0xffffffff00000000, 0xfffffffffffffffe, 0xffffffffffffffff, 0x8000000000000000}

func TestComparisons(t *testing.T) {
	for _, op := range ops {
		for _, v := range boundaries {
			for _, arches := range [][]specs.Arch{nil, {specs.ArchX86}} {
				v2 := v & 0x00000001ffff0001 // a datum for MASKED_EQ
				p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: arches,
					Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow,
						Args: []specs.LinuxSeccompArg{{Index: 2, Op: op, Value: v, ValueTwo: v2}}}}}
				vm := newVM(t, compile(t, p))
				for _, arg := range boundaries {
					want := RetErrno | 1
					if refCompare(op, arg, v, v2) {
						want = RetAllow
					}
					if got := vm.run(x64(0, 0, 0, arg)); got != want {
						t.Errorf("x86_64: arg %#x %s %#x (%#x): %#x, want %#x", arg, op, v, v2, got, want)
					}
					if arches == nil || arg > 0xffffffff {
						continue // i386 arguments are zero-extended 32-bit
					}
					want = RetErrno | 1
					if refCompare(op, arg, v, v2) {
						want = RetAllow
					}
					c := call{arch: auditArchI386, nr: 3}
					c.args[2] = arg
					if got := vm.run(c); got != want {
						t.Errorf("i386: arg %#x %s %#x (%#x): %#x, want %#x", arg, op, v, v2, got, want)
					}
				}
			}
		}
	}
}

func TestMultipleRules(t *testing.T) {
	eq := func(i uint, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Value: v, Op: specs.OpEqualTo}
	}
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		// Different arguments: ANDed.
		{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(0, 1), eq(1, 2)}},
		// Same argument twice: ORed, as runc does.
		{Names: []string{"write"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(0, 1), eq(0, 2)}},
		// Two rules for one syscall: ORed, first match decides.
		{Names: []string{"close"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(0, 1)}},
		{Names: []string{"close"}, Action: specs.ActLog, Args: []specs.LinuxSeccompArg{eq(0, 2)}},
		{Names: []string{"close"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{eq(0, 1)}},
		// An unconditional rule is the fallback whatever its place.
		{Names: []string{"open"}, Action: specs.ActTrap},
		{Names: []string{"open"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(1, 0)}},
		// A rule with the default action is dropped, as in runc.
		{Names: []string{"open"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{eq(1, 5)}},
		// Unknown names are skipped.
		{Names: []string{"no_such_syscall", "getpid"}, Action: specs.ActAllow},
	}}
	prog := compile(t, p)
	if strings.Join(prog.Skipped, ",") != "no_such_syscall" {
		t.Errorf("skipped %v", prog.Skipped)
	}
	v := newVM(t, prog)
	tests := []struct {
		c    call
		want uint32
	}{
		{x64(0, 1, 2), RetAllow}, {x64(0, 1, 3), RetErrno | 1}, {x64(0, 2, 2), RetErrno | 1},
		{x64(1, 1), RetAllow}, {x64(1, 2), RetAllow}, {x64(1, 3), RetErrno | 1},
		{x64(3, 1), RetAllow}, {x64(3, 2), RetLog}, {x64(3, 3), RetErrno | 1},
		{x64(2, 0, 0), RetAllow}, {x64(2, 0, 1), RetTrap}, {x64(2, 0, 5), RetTrap},
		{x64(39), RetAllow}, {x64(40), RetErrno | 38},
	}
	for _, tt := range tests {
		if got := v.run(tt.c); got != tt.want {
			t.Errorf("nr %d args %v: %#x, want %#x", tt.c.nr, tt.c.args[:2], got, tt.want)
		}
	}
}

func TestStub(t *testing.T) {
	rules := []specs.LinuxSyscall{{Names: []string{"openat"}, Action: specs.ActErrno, ErrnoRet: uintp(5)}}
	tests := []struct {
		def  specs.LinuxSeccompAction
		want uint32 // for faccessat2 (439), above openat (257)
	}{
		{specs.ActErrno, RetErrno | 38},
		{specs.ActKillProcess, RetErrno | 38},
		{specs.ActAllow, RetAllow},
		{specs.ActLog, RetLog},
		{specs.ActTrace, RetTrace | 1}, // runc: a tracer handles new syscalls
	}
	for _, tt := range tests {
		v := newVM(t, compile(t, &specs.LinuxSeccomp{DefaultAction: tt.def, Syscalls: rules}))
		if got := v.run(x64(439)); got != tt.want {
			t.Errorf("default %s: %#x, want %#x", tt.def, got, tt.want)
		}
		if got := v.run(x64(257)); got != RetErrno|5 {
			t.Errorf("default %s: openat %#x", tt.def, got)
		}
	}
	// A rule with the default action is dropped but still counts for the
	// highest number, as in runc.
	v := newVM(t, compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: append(rules,
		specs.LinuxSyscall{Names: []string{"faccessat2"}, Action: specs.ActErrno})}))
	if got := v.run(x64(439)); got != RetErrno|1 {
		t.Errorf("faccessat2 named with the default action: %#x, want EPERM", got)
	}
	if got := v.run(x64(440)); got != RetErrno|38 {
		t.Errorf("above faccessat2: %#x, want ENOSYS", got)
	}
	// No rules at all: the default applies everywhere.
	v = newVM(t, compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}))
	if got := v.run(x64(439)); got != RetErrno|1 {
		t.Errorf("empty profile: %#x", got)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		p    *specs.LinuxSeccomp
		want string
	}{
		{"nil", nil, "nil profile"},
		{"no default", &specs.LinuxSeccomp{}, "defaultAction: no action"},
		{"bad default", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, `unknown action "SCMP_ACT_NOPE"`},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "cannot be the default"},
		{"bad arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, `unknown architecture "SCMP_ARCH_Z80"`},
		{"bad flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"X"}}, `unknown flag "X"`},
		{"killable recv without notify", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}}, "needs a SCMP_ACT_NOTIFY"},
		{"bad op", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_XX"}}}}}, `syscalls[0] [read]: unknown operator "SCMP_CMP_XX"`},
		{"bad index", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "argument index 6 out of range"},
		{"no names", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, "no syscall names"},
		{"errnoRet on allow", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, ErrnoRet: uintp(1)}}}, "errnoRet is only valid"},
		{"errnoRet too big", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(70000)}, "errnoRet 70000 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	notify := []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActNotify}}
	tests := []struct {
		flags []specs.LinuxSeccompFlag
		rules []specs.LinuxSyscall
		want  uint
	}{
		{nil, nil, 0},
		{[]specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}, nil, FlagTsync | FlagLog | FlagSpecAllow},
		{nil, notify, FlagNewListener},
		{[]specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}, notify, FlagTsync | FlagNewListener | FlagTsyncESRCH},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, notify, FlagNewListener | FlagWaitKillableRecv},
	}
	for i, tt := range tests {
		prog := compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tt.flags, Syscalls: tt.rules})
		if prog.Flags != tt.want {
			t.Errorf("%d: flags %#x, want %#x", i, prog.Flags, tt.want)
		}
	}
}

// TestLongJumps compiles a profile whose argument checks push the shared
// verdicts more than 255 instructions away, so jumps need trampolines, and
// checks every syscall's verdict.
func TestLongJumps(t *testing.T) {
	var rules []specs.LinuxSyscall
	names := sortedNames(syscallsX86_64)
	var highest uint32
	for i, name := range names {
		if i%3 == 0 {
			continue // left to the default
		}
		highest = syscallsX86_64.nr(name)
		rules = append(rules, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: uint(i % 6), Value: uint64(i) << 31, Op: specs.OpGreaterEqual}}})
	}
	rules = append(rules, specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActKillProcess})
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: rules}
	prog := compile(t, p)
	t.Logf("%d syscalls with conditions: %d instructions", len(rules), len(prog.Instructions))
	far := false
	for _, ins := range prog.Instructions {
		far = far || ins.Op == opJa && ins.K > 255
	}
	if !far {
		t.Fatal("no long jump in the program: the test does not test trampolines")
	}
	v := newVM(t, prog)
	for i, name := range names {
		n := syscallsX86_64.nr(name)
		var args [6]uint64
		args[i%6] = uint64(i) << 31
		below := args
		below[i%6]--
		want, wantBelow := RetAllow, RetErrno|1
		switch {
		case name == "read":
			want, wantBelow = RetKillProcess, RetKillProcess
		case n > highest:
			want, wantBelow = RetErrno|38, RetErrno|38
		case i%3 == 0:
			want = RetErrno | 1
		case i == 0:
			wantBelow = RetAllow // 0-1 wraps to the maximum
		}
		if got := v.run(call{arch: auditArchX86_64, nr: n, args: args}); got != want {
			t.Errorf("%s (%d): %#x, want %#x", name, n, got, want)
		}
		if got := v.run(call{arch: auditArchX86_64, nr: n, args: below}); got != wantBelow {
			t.Errorf("%s (%d) below: %#x, want %#x", name, n, got, wantBelow)
		}
	}
}

func TestTooLong(t *testing.T) {
	var args []specs.LinuxSeccompArg
	for i := 0; i < 6; i++ {
		args = append(args, specs.LinuxSeccompArg{Index: uint(i), Value: 1 << 40, Op: specs.OpLessEqual})
	}
	var rules []specs.LinuxSyscall
	for _, name := range sortedNames(syscallsX86_64) {
		rules = append(rules, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: args})
	}
	_, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: rules})
	if err == nil || !strings.Contains(err.Error(), "more than the kernel's limit of 4096") {
		t.Fatalf("got %v", err)
	}
}

// nr is lookup for tests, where a missing name is the test's bug.
func (t sysTable) nr(name string) uint32 {
	n, _ := t.lookup(name)
	return n
}

func sortedNames(t sysTable) []string {
	m := make(map[string]uint32, len(t))
	for _, e := range t {
		m[e.name] = e.nr
	}
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	// By number, so that test output follows the table.
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if m[out[j]] < m[out[i]] || m[out[j]] == m[out[i]] && out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestString(t *testing.T) {
	prog := compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}})
	out := prog.String()
	t.Logf("\n%s", out)
	if n := strings.Count(out, "\n"); n != len(prog.Instructions) || !strings.HasPrefix(out, "   0  ld [4]\n") {
		t.Fatalf("disassembly:\n%s", out)
	}
}

func TestSyscallTable(t *testing.T) {
	for _, tt := range []struct {
		arch specs.Arch
		name string
		want uint32
	}{
		{specs.ArchX86_64, "read", 0}, {specs.ArchX86_64, "clone3", 435}, {specs.ArchX86_64, "listns", 470},
		{specs.ArchX86, "read", 3}, {specs.ArchX86, "socketcall", 102}, {specs.ArchX86, "clone3", 435},
		{specs.ArchX32, "read", x32SyscallBit}, {specs.ArchX32, "ioctl", x32SyscallBit | 514},
		{specs.ArchX32, "execve", x32SyscallBit | 520},
	} {
		table, err := SyscallTable(tt.arch)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := table[tt.name]; !ok || got != tt.want {
			t.Errorf("%s %s = %#x, %v; want %#x", tt.arch, tt.name, got, ok, tt.want)
		}
	}
	x32, _ := SyscallTable(specs.ArchX32)
	if _, ok := x32["uselib"]; ok {
		t.Error("x32 has uselib, a 64-bit-only syscall")
	}
	if _, err := SyscallTable(specs.ArchAARCH64); err == nil {
		t.Error("aarch64 table")
	}
}

// TestI386Multiplexers checks that rules on socket and SysV IPC calls also
// cover their i386 socketcall(2) and ipc(2) forms, as libseccomp does.
func TestI386Multiplexers(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"socket", "recv"}, Action: specs.ActErrno, ErrnoRet: uintp(13)},
			// Arguments behind the pointer cannot be checked: the
			// socketcall form denies every connect.
			{Names: []string{"connect"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 16, Op: specs.OpEqualTo}}},
			{Names: []string{"shmget"}, Action: specs.ActErrno, ErrnoRet: uintp(28)},
		}}
	prog := compile(t, p)
	if len(prog.Skipped) != 0 {
		t.Errorf("skipped %v: recv exists on i386 through socketcall", prog.Skipped)
	}
	v := newVM(t, prog)
	i386 := func(nr uint32, args ...uint64) call {
		c := call{arch: auditArchI386, nr: nr}
		copy(c.args[:], args)
		return c
	}
	for _, tt := range []struct {
		name string
		c    call
		want uint32
	}{
		{"socketcall(SYS_SOCKET)", i386(i386Socketcall, 1), RetErrno | 13},
		{"socketcall(SYS_RECV)", i386(i386Socketcall, 10), RetErrno | 13},
		{"socketcall(SYS_BIND)", i386(i386Socketcall, 2), RetAllow},
		{"socketcall(SYS_CONNECT)", i386(i386Socketcall, 3, 0), RetErrno | 1},
		{"socket", i386(syscallsX86.nr("socket")), RetErrno | 13},
		{"connect addrlen 16", i386(syscallsX86.nr("connect"), 0, 0, 16), RetErrno | 1},
		{"connect addrlen 8", i386(syscallsX86.nr("connect"), 0, 0, 8), RetAllow},
		{"ipc(SHMGET)", i386(i386IPC, 23), RetErrno | 28},
		{"ipc(SHMAT)", i386(i386IPC, 21), RetAllow},
		{"x86_64 socket", x64(nr(t, "socket")), RetErrno | 13},
	} {
		if got := v.run(tt.c); got != tt.want {
			t.Errorf("%s: %#x, want %#x", tt.name, got, tt.want)
		}
	}
}
