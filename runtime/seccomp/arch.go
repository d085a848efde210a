package seccomp

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// AUDIT_ARCH_* values (include/uapi/linux/audit.h): what the kernel puts in
// seccomp_data.arch.
const (
	auditArchX86_64 = 0xc000003e
	auditArchI386   = 0x40000003
)

// x32SyscallBit is set in seccomp_data.nr by x32 tasks, which otherwise
// report AUDIT_ARCH_X86_64: it is the only thing telling x32 from x86_64.
const x32SyscallBit = 0x40000000

// arch is an architecture this package can filter: its audit value, its
// syscall table, and whether its arguments are 32 bits wide.
type arch struct {
	name     specs.Arch
	audit    uint32
	syscalls sysTable
	nrBits   uint32 // ORed into every number (x32)
	args32   bool
	// mux: i386 also reaches socket and SysV IPC calls through the
	// socketcall(2) and ipc(2) multiplexers, the call in argument 0.
	mux bool
}

// sysEntry is one syscall of a sysTable.
type sysEntry struct {
	name string
	nr   uint32
}

// sysTable is a syscall table sorted by name (see mksyscalls.go for why it
// is not a map).
type sysTable []sysEntry

// lookup returns name's number, by binary search.
func (t sysTable) lookup(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(t, name, func(e sysEntry, n string) int { return strings.Compare(e.name, n) })
	if !ok {
		return 0, false
	}
	return t[i].nr, true
}

// muxCall is a call reached through a multiplexer syscall.
type muxCall struct {
	nr   uint32 // the multiplexer's number
	call uint32 // the call's number, its argument 0
}

// The i386 multiplexers, and the calls they multiplex: SYS_* of
// include/uapi/linux/net.h and the ipc calls of include/uapi/linux/ipc.h.
const (
	i386Socketcall = 102
	i386IPC        = 117
)

var socketcalls = map[string]uint32{"socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5,
	"getsockname": 6, "getpeername": 7, "socketpair": 8, "send": 9, "recv": 10, "sendto": 11,
	"recvfrom": 12, "shutdown": 13, "setsockopt": 14, "getsockopt": 15, "sendmsg": 16, "recvmsg": 17,
	"accept4": 18, "recvmmsg": 19, "sendmmsg": 20}

var ipcCalls = map[string]uint32{"semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4,
	"msgsnd": 11, "msgrcv": 12, "msgget": 13, "msgctl": 14,
	"shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24}

// multiplexed says whether a reaches name through a multiplexer too.
func (a *arch) multiplexed(name string) (muxCall, bool) {
	if !a.mux {
		return muxCall{}, false
	}
	if c, ok := socketcalls[name]; ok {
		return muxCall{i386Socketcall, c}, true
	}
	if c, ok := ipcCalls[name]; ok {
		return muxCall{i386IPC, c}, true
	}
	return muxCall{}, false
}

var (
	archX86_64 = &arch{name: specs.ArchX86_64, audit: auditArchX86_64, syscalls: syscallsX86_64}
	archX86    = &arch{name: specs.ArchX86, audit: auditArchI386, syscalls: syscallsX86, args32: true, mux: true}
	// x32 passes 64-bit registers: its arguments are 64-bit.
	archX32 = &arch{name: specs.ArchX32, audit: auditArchX86_64, syscalls: syscallsX32, nrBits: x32SyscallBit}
)

// otherArches are the names the runtime-spec defines for which this package
// has no syscall table. A profile may list them (Docker's lists its whole
// arch family); they need no code, since an x86 kernel never reports them.
var otherArches = map[specs.Arch]bool{
	specs.ArchARM: true, specs.ArchAARCH64: true,
	specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true,
	specs.ArchPPC: true, specs.ArchPPC64: true, specs.ArchPPC64LE: true,
	specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true,
	specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true,
	specs.ArchM68K: true, specs.ArchSH: true, specs.ArchSHEB: true,
}

// nativeArch is the architecture of the running binary: like runc (through
// libseccomp), every filter includes it whether the profile lists it or not.
func nativeArch() (*arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return archX86_64, nil
	case "386":
		return archX86, nil
	}
	return nil, fmt.Errorf("seccomp: no syscall table for native architecture %s (only amd64 and 386 are built)", runtime.GOARCH)
}

// arches resolves a profile's architecture list, native first. Unknown names
// are errors.
func arches(list []specs.Arch) ([]*arch, error) {
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	out := []*arch{native}
	for _, name := range list {
		var a *arch
		switch name {
		case specs.ArchX86_64:
			a = archX86_64
		case specs.ArchX86:
			a = archX86
		case specs.ArchX32:
			a = archX32
		default:
			if !otherArches[name] {
				return nil, fmt.Errorf("seccomp: unknown architecture %q", name)
			}
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == a
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out, nil
}

// SyscallTable returns a copy of the syscall numbers this package uses for
// an architecture it has a table for (x86_64, x86, x32; x32 numbers include
// the x32 bit, as the kernel reports them).
func SyscallTable(name specs.Arch) (map[string]uint32, error) {
	var a *arch
	switch name {
	case specs.ArchX86_64:
		a = archX86_64
	case specs.ArchX86:
		a = archX86
	case specs.ArchX32:
		a = archX32
	default:
		return nil, fmt.Errorf("seccomp: no syscall table for %q", name)
	}
	out := make(map[string]uint32, len(a.syscalls))
	for _, e := range a.syscalls {
		out[e.name] = e.nr | a.nrBits
	}
	return out, nil
}
