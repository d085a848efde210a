package seccomp

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCompile feeds JSON profiles to Compile. It must never panic; what it
// compiles must fit the kernel's limit, run in x/net/bpf's VM, and agree with
// refVerdict, a direct reading of the semantics documented in the package.
func FuzzCompile(f *testing.F) {
	docker, err := json.Marshal(dockerProfile(f, dockerCaps))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(docker, uint32(56), uint8(0), uint64(0x10000000), uint64(0))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],
		"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967296,"op":"SCMP_CMP_GE"}]},
		{"names":["write"],"action":"SCMP_ACT_LOG","args":[{"index":1,"value":3,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"},{"index":1,"value":7,"op":"SCMP_CMP_LT"}]}]}`),
		uint32(1), uint8(1), uint64(5), uint64(1))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"syscalls":[
		{"names":["socketcall"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"}]},
		{"names":["socket","shmat"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":2,"op":"SCMP_CMP_NE"}]},
		{"names":["recv","socketcall"],"action":"SCMP_ACT_TRAP"}]}`),
		uint32(102), uint8(1), uint64(10), uint64(0))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_NOTIFY"}]}`),
		uint32(500), uint8(2), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, js []byte, nr uint32, archSel uint8, a0, a1 uint64) {
		var p specs.LinuxSeccomp
		if json.Unmarshal(js, &p) != nil {
			return
		}
		prog, err := Compile(&p)
		if err != nil {
			return
		}
		if len(prog.Instructions) > MaxInstructions {
			t.Fatalf("%d instructions", len(prog.Instructions))
		}
		c := call{nr: nr, args: [6]uint64{a0, a1, a0 ^ a1, a0 >> 1, a1 << 1, a0 + a1}}
		switch archSel % 4 {
		case 0:
			c.arch = auditArchX86_64
		case 1:
			c.arch = auditArchI386
			for i := range c.args {
				c.args[i] &= 0xffffffff // i386 arguments are 32-bit
			}
		case 2:
			c.arch, c.nr = auditArchX86_64, nr|x32SyscallBit
		case 3:
			c.arch = uint32(a0)
		}
		got := newVM(t, prog).run(c)
		if want := refVerdict(t, &p, c); got != want {
			t.Fatalf("arch %#x nr %#x args %#x: filter says %#x, reference %#x", c.arch, c.nr, c.args, got, want)
		}
	})
}

// refVerdict decides a call by reading the profile directly.
func refVerdict(t *testing.T, p *specs.LinuxSeccomp, c call) uint32 {
	def, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		t.Fatal(err)
	}
	list, err := arches(p.Architectures)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[*arch]bool{}
	for _, a := range list {
		listed[a] = true
	}
	var a *arch
	switch {
	case c.arch == auditArchI386:
		a = archX86
	case c.arch == auditArchX86_64 && c.nr&x32SyscallBit != 0 && c.nr != 0xffffffff:
		a = archX32
	case c.arch == auditArchX86_64:
		a = archX86_64
	}
	if a == nil || !listed[a] {
		return RetKillProcess
	}
	if a == archX32 && c.nr < x32Low && namesAny(p, archX86_64) {
		// Below 512, x32 is decided as x86_64.
		a, c.nr = archX86_64, c.nr&^x32SyscallBit
	}
	type match struct {
		act  uint32
		args []specs.LinuxSeccompArg
		or   bool // conditions ORed: one argument is tested twice
	}
	var rules []match
	highest, any := uint32(0), false
	for _, s := range p.Syscalls {
		act, err := action(s.Action, s.ErrnoRet)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint]bool{}
		or := false
		for _, arg := range s.Args {
			or = or || seen[arg.Index]
			seen[arg.Index] = true
		}
		for _, name := range s.Names {
			if m, ok := a.multiplexed(name); ok {
				// i386: the call through socketcall/ipc, checking
				// only the call number in argument 0.
				if m.nr > highest || !any {
					highest, any = max(highest, m.nr), true
				}
				if m.nr == c.nr && act != def {
					rules = append(rules, match{act, []specs.LinuxSeccompArg{{Index: 0, Value: uint64(m.call), Op: specs.OpEqualTo}}, false})
				}
			}
			n, ok := a.syscalls.lookup(name)
			if !ok {
				continue
			}
			n |= a.nrBits
			if !any || n > highest {
				highest, any = n, true
			}
			if n == c.nr && act != def {
				rules = append(rules, match{act, s.Args, or})
			}
		}
	}
	if !any {
		return def
	}
	if c.nr > highest {
		if def == RetAllow || def == RetLog || def&^RetData == RetTrace {
			return def
		}
		return RetErrno | errnoENOSYS
	}
	holds := func(arg specs.LinuxSeccompArg) bool {
		return refCompare(arg.Op, c.args[arg.Index], arg.Value, arg.ValueTwo)
	}
	for _, r := range rules {
		if len(r.args) == 0 {
			continue
		}
		ok := !r.or
		for _, arg := range r.args {
			if r.or {
				ok = ok || holds(arg)
			} else {
				ok = ok && holds(arg)
			}
		}
		if ok {
			return r.act
		}
	}
	for _, r := range rules {
		if len(r.args) == 0 {
			return r.act
		}
	}
	return def
}

// namesAny tells whether p names a syscall a has.
func namesAny(p *specs.LinuxSeccomp, a *arch) bool {
	for _, s := range p.Syscalls {
		for _, name := range s.Names {
			if _, ok := a.syscalls.lookup(name); ok {
				return true
			}
		}
	}
	return false
}
