package container

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// Validate rejects a spec this runtime cannot run as asked, before anything
// is created: bad input gets a clear error and loses nothing.
func Validate(s *specs.Spec) error {
	if s == nil {
		return fmt.Errorf("spec: missing: %w", ErrInvalid)
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return fmt.Errorf("spec: ociVersion %q: only 1.x is supported: %w", s.Version, ErrInvalid)
	}
	if s.Root == nil || s.Root.Path == "" {
		return fmt.Errorf("spec: root.path is required: %w", ErrInvalid)
	}
	// A spec without process can be created; start refuses it.
	if s.Process != nil {
		if err := validateProcess(s.Process); err != nil {
			return err
		}
	}
	if s.Linux == nil {
		return fmt.Errorf("spec: linux section is required: %w", ErrInvalid)
	}
	if err := validateNamespaces(s); err != nil {
		return err
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("spec: mount destination %q is not absolute: %w", m.Destination, ErrInvalid)
		}
	}
	if s.Hostname != "" && !hasNS(s, specs.UTSNamespace) {
		return fmt.Errorf("spec: hostname needs a uts namespace: %w", ErrInvalid)
	}
	if s.Domainname != "" && !hasNS(s, specs.UTSNamespace) {
		return fmt.Errorf("spec: domainname needs a uts namespace: %w", ErrInvalid)
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return fmt.Errorf("spec: process.args must not be empty: %w", ErrInvalid)
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("spec: process.cwd %q must be an absolute path: %w", p.Cwd, ErrInvalid)
	}
	for _, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("spec: process.env entry %q is not KEY=value: %w", e, ErrInvalid)
		}
	}
	for _, rl := range p.Rlimits {
		if _, ok := rlimitNames[rl.Type]; !ok {
			return fmt.Errorf("spec: unknown rlimit %q: %w", rl.Type, ErrInvalid)
		}
		if rl.Soft > rl.Hard {
			return fmt.Errorf("spec: rlimit %s: soft %d above hard %d: %w", rl.Type, rl.Soft, rl.Hard, ErrInvalid)
		}
	}
	// The host has neither AppArmor nor SELinux enabled unless these exist;
	// a requested label that cannot be applied is an error, not a no-op.
	if p.ApparmorProfile != "" && !lsmEnabled("apparmor") {
		return fmt.Errorf("spec: apparmorProfile %q requested but AppArmor is not enabled on this host: %w", p.ApparmorProfile, ErrUnsupported)
	}
	if p.SelinuxLabel != "" && !lsmEnabled("selinux") {
		return fmt.Errorf("spec: selinuxLabel %q requested but SELinux is not enabled on this host: %w", p.SelinuxLabel, ErrUnsupported)
	}
	return nil
}

func validateNamespaces(s *specs.Spec) error {
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if _, ok := nsFlags[ns.Type]; !ok {
			return fmt.Errorf("spec: unknown namespace type %q: %w", ns.Type, ErrInvalid)
		}
		if seen[ns.Type] {
			return fmt.Errorf("spec: namespace %q listed twice: %w", ns.Type, ErrInvalid)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return fmt.Errorf("spec: namespace %s path %q is not absolute: %w", ns.Type, ns.Path, ErrInvalid)
		}
	}
	// Without a mount namespace of its own, setting up the rootfs and
	// pivot_root would rearrange the runtime's (the host's) mounts.
	if !seen[specs.MountNamespace] {
		return fmt.Errorf("spec: a container without a mount namespace is not supported (its rootfs setup would change the host's mounts): %w", ErrUnsupported)
	}
	newUser := hasNewNS(s, specs.UserNamespace)
	if newUser && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return fmt.Errorf("spec: a new user namespace needs uidMappings and gidMappings: %w", ErrInvalid)
	}
	if !seen[specs.UserNamespace] && (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) {
		return fmt.Errorf("spec: uid/gid mappings given without a user namespace: %w", ErrInvalid)
	}
	if len(s.Linux.TimeOffsets) > 0 && !hasNewNS(s, specs.TimeNamespace) {
		return fmt.Errorf("spec: timeOffsets need a new time namespace: %w", ErrInvalid)
	}
	for k := range s.Linux.TimeOffsets {
		if k != "monotonic" && k != "boottime" {
			return fmt.Errorf("spec: timeOffsets clock %q: only monotonic and boottime: %w", k, ErrInvalid)
		}
	}
	for k := range s.Linux.Sysctl {
		if err := checkSysctlNS(s, k); err != nil {
			return err
		}
	}
	return nil
}

// checkSysctlNS refuses a sysctl the container does not own: writing it
// would change the host (runc refuses the same ones).
func checkSysctlNS(s *specs.Spec, key string) error {
	need := specs.LinuxNamespaceType("")
	switch {
	case strings.HasPrefix(key, "net."):
		need = specs.NetworkNamespace
	case strings.HasPrefix(key, "fs.mqueue.") || key == "kernel.msgmax" || key == "kernel.msgmnb" ||
		key == "kernel.msgmni" || key == "kernel.sem" || key == "kernel.shmall" || key == "kernel.shmmax" ||
		key == "kernel.shmmni" || key == "kernel.shm_rmid_forced":
		need = specs.IPCNamespace
	case key == "kernel.hostname" || key == "kernel.domainname":
		need = specs.UTSNamespace
	default:
		return fmt.Errorf("spec: sysctl %q is not namespaced: it would change the host: %w", key, ErrInvalid)
	}
	if !hasNS(s, need) {
		return fmt.Errorf("spec: sysctl %q needs a %s namespace: %w", key, need, ErrInvalid)
	}
	return nil
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func hasNewNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

func lsmEnabled(name string) bool {
	b, err := readFileString("/sys/kernel/security/lsm")
	return err == nil && strings.Contains(","+strings.TrimSpace(b)+",", ","+name+",")
}
