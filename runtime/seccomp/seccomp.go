// Package seccomp compiles OCI seccomp profiles (linux.seccomp) to classic BPF
// in pure Go (no libseccomp) and installs them with seccomp(2).
package seccomp

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// ErrNotImplemented is returned by parts not built yet.
var ErrNotImplemented = errors.New("seccomp: not implemented")

// Program is a compiled filter, ready to install.
type Program struct {
	Instructions []bpf.RawInstruction
	// Flags are SECCOMP_FILTER_FLAG_* from the profile's flags.
	Flags uint
	// Notify is set when any rule uses SCMP_ACT_NOTIFY: Install then returns
	// the listener fd that the caller sends to the profile's listenerPath.
	Notify bool
}

// Compile validates p and builds its filter for the native architecture and
// the ones p lists. Unknown syscall names are skipped as runc does (the kernel
// may not have them); unknown actions, arches or operators are errors.
func Compile(p *specs.LinuxSeccomp) (*Program, error) {
	return nil, ErrNotImplemented
}

// Install loads prog into the calling thread with seccomp(2) and TSYNC
// semantics as the flags say. The caller must have set no_new_privs or hold
// CAP_SYS_ADMIN. It returns the notify listener fd, or -1.
func Install(prog *Program) (int, error) {
	return -1, ErrNotImplemented
}
