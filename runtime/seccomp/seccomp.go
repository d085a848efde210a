// Package seccomp compiles OCI seccomp profiles (linux.seccomp) to classic BPF
// in pure Go (no libseccomp) and installs them with seccomp(2).
//
// The filter follows runc's (libseccomp's) semantics:
//   - seccomp_data.arch is checked first: the native architecture and the
//     profile's x86-family architectures get their own syscall tables; any
//     other architecture kills the process (libseccomp kills only the
//     thread by default: a multi-threaded process would go on without it);
//   - syscall names the tables lack are skipped (the profile may name
//     syscalls of a newer kernel or of another architecture);
//   - a rule's argument conditions are ANDed, except that a rule with two
//     conditions on the same argument becomes one rule per condition (ORed),
//     as runc does;
//   - several rules for one syscall: those with conditions are tried in
//     profile order, the first whose conditions all hold decides; an
//     unconditional rule (the first, if several) applies when none does;
//   - rules whose action equals the default action are dropped, as runc does;
//   - syscall numbers above the highest one the profile names get ENOSYS
//     instead of a denying default action (runc's "-ENOSYS stub"), so that
//     a libc probing a syscall newer than the profile (clone3, faccessat2)
//     falls back to the old one instead of failing with EPERM (not under
//     an ALLOW, LOG or TRACE default, as in runc);
//   - x32 numbers below 512 are decided as x86_64's same numbers (when the
//     profile names any x86_64 syscall): those x32 has are x86_64's
//     "common" calls, under the same rules, and the others run nothing on
//     x32 (the kernel's x32 table has sys_ni_syscall there, since 5.4).
//     libseccomp gives those a verdict of their own (the default action);
//     here x32 needs no tree of its own below 512, half the filter;
//   - on i386, a rule on a socket or SysV IPC call also covers its form
//     through socketcall(2) or ipc(2), matching the call number in argument
//     0 only (the other arguments are behind a pointer), as libseccomp does.
//
// Syscalls are dispatched by a binary search over ranges of numbers with the
// same verdict, not a linear chain, down to runs of up to 8 ranges that are
// tested in a chain (the kernel's eBPF form of the filter is smaller: one
// page instead of two for Docker's profile): for Docker's profile, 12
// instructions run per x86_64 syscall on average, 18 at most
// (bench/seccomp.sh).
package seccomp

//go:generate go run mksyscalls.go

import (
	"errors"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// ErrNotImplemented is returned by parts not built yet.
var ErrNotImplemented = errors.New("seccomp: not implemented")

// MaxInstructions is the kernel's limit on a filter's length (BPF_MAXINSNS).
const MaxInstructions = 4096

// SECCOMP_RET_* actions (include/uapi/linux/seccomp.h). The low 16 bits
// (SECCOMP_RET_DATA) carry the errno of ERRNO and the message of TRACE.
const (
	RetKillProcess uint32 = 0x80000000
	RetKillThread  uint32 = 0x00000000
	RetTrap        uint32 = 0x00030000
	RetErrno       uint32 = 0x00050000
	RetUserNotif   uint32 = 0x7fc00000
	RetTrace       uint32 = 0x7ff00000
	RetLog         uint32 = 0x7ffc0000
	RetAllow       uint32 = 0x7fff0000
	RetData        uint32 = 0x0000ffff
)

// SECCOMP_FILTER_FLAG_* (include/uapi/linux/seccomp.h).
const (
	FlagTsync            uint = 1 << 0
	FlagLog              uint = 1 << 1
	FlagSpecAllow        uint = 1 << 2
	FlagNewListener      uint = 1 << 3
	FlagTsyncESRCH       uint = 1 << 4
	FlagWaitKillableRecv uint = 1 << 5
)

// Program is a compiled filter, ready to install.
type Program struct {
	Instructions []bpf.RawInstruction
	// Flags are SECCOMP_FILTER_FLAG_* from the profile's flags.
	Flags uint
	// Notify is set when any rule uses SCMP_ACT_NOTIFY: Install then returns
	// the listener fd that the caller sends to the profile's listenerPath.
	Notify bool
	// Skipped lists the syscall names of the profile that no filtered
	// architecture knows; callers may log them.
	Skipped []string
}

// Compile validates p and builds its filter for the native architecture and
// the ones p lists. Unknown syscall names are skipped as runc does (the kernel
// may not have them); unknown actions, arches or operators are errors, as is
// a filter longer than MaxInstructions.
func Compile(p *specs.LinuxSeccomp) (*Program, error) {
	if p == nil {
		return nil, errors.New("seccomp: nil profile")
	}
	prof, err := parseProfile(p)
	if err != nil {
		return nil, err
	}
	archList, err := arches(p.Architectures)
	if err != nil {
		return nil, err
	}
	prog := &Program{Notify: prof.notify}
	if prog.Flags, err = flags(p.Flags, prof.notify); err != nil {
		return nil, err
	}
	prog.Skipped = skipped(prof, archList)
	prog.Instructions = generate(prof, archList)
	if n := len(prog.Instructions); n > MaxInstructions {
		return nil, fmt.Errorf("seccomp: filter has %d instructions, more than the kernel's limit of %d", n, MaxInstructions)
	}
	return prog, nil
}

// flags turns the profile's flag names into SECCOMP_FILTER_FLAG_* bits.
func flags(names []specs.LinuxSeccompFlag, notify bool) (uint, error) {
	var f uint
	for _, n := range names {
		switch n {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			f |= FlagTsync
		case specs.LinuxSeccompFlagLog:
			f |= FlagLog
		case specs.LinuxSeccompFlagSpecAllow:
			f |= FlagSpecAllow
		case specs.LinuxSeccompFlagWaitKillableRecv:
			f |= FlagWaitKillableRecv
		default:
			return 0, fmt.Errorf("seccomp: unknown flag %q", n)
		}
	}
	if notify {
		f |= FlagNewListener
		// TSYNC reports a failing thread's id in the return value, which
		// collides with the listener fd: the kernel refuses the pair
		// unless TSYNC_ESRCH makes TSYNC report failure as ESRCH.
		if f&FlagTsync != 0 {
			f |= FlagTsyncESRCH
		}
	} else if f&FlagWaitKillableRecv != 0 {
		return 0, errors.New("seccomp: flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule (the kernel accepts it only with a listener)")
	}
	return f, nil
}

// String disassembles the program, one numbered instruction a line, for
// debugging output.
func (p *Program) String() string {
	var b strings.Builder
	for i, raw := range p.Instructions {
		fmt.Fprintf(&b, "%4d  %v\n", i, raw.Disassemble())
	}
	return b.String()
}
