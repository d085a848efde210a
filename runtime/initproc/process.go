package initproc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/runtime/caps"
	"github.com/estiba/estiba/runtime/procfs"
	"github.com/estiba/estiba/runtime/seccomp"
)

// HostProcWrites writes the sysctls and oom_score_adj through a procfs
// instance of our own, before any container mount exists: the kernel applies
// the sysctls to the writer's namespaces, oom_score_adj to the process
// /proc/<proc> names ("self" in init; the init stub's pid for the runtime,
// writing from a thread in the stub's namespaces). With shared (a
// long-lived runtime), the instance is shared's, kept across calls.
func HostProcWrites(spec *specs.Spec, proc string, shared *procfs.Shared) error {
	var adj *int
	if spec.Process != nil {
		adj = spec.Process.OOMScoreAdj
	}
	return ProcWrites(spec.Linux.Sysctl, adj, proc, shared)
}

// ProcWrites is HostProcWrites of the given sysctls and oom_score_adj.
func ProcWrites(sysctl map[string]string, adj *int, proc string, shared *procfs.Shared) error {
	if len(sysctl) == 0 && adj == nil {
		return nil // no procfs instance to make
	}
	var h *procfs.Handle
	var err error
	if shared != nil {
		// Close-on-exec, in the runtime: no container process ever
		// holds it.
		h, err = shared.Get()
	} else {
		h, err = procfs.Open()
		// Closed before anything runs in the container: no fd of ours
		// may lead out of its root (CVE-2024-21626).
		defer h.Close()
	}
	if err != nil {
		return err
	}
	if err := WriteSysctls(h, sysctl); err != nil {
		return err
	}
	if adj != nil {
		if err := h.WriteFile(proc+"/oom_score_adj", []byte(strconv.Itoa(*adj))); err != nil {
			return fmt.Errorf("oomScoreAdj: %w", err)
		}
	}
	return nil
}

// WriteSysctls writes the spec's sysctls through h, in the caller's
// namespaces.
func WriteSysctls(h *procfs.Handle, sysctl map[string]string) error {
	for k, v := range sysctl {
		if err := h.WriteSysctl(k, v); err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
	}
	return nil
}

// SetUTS sets the hostname and domainname of the caller's UTS namespace.
func SetUTS(spec *specs.Spec) error {
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("setdomainname: %w", err)
		}
	}
	return nil
}

// newSessionKeyring gives the container its own session keyring, so that
// containers do not share the host's (runc's default, --no-new-keyring off).
func newSessionKeyring(id string) error {
	if _, err := unix.KeyctlJoinSessionKeyring("_ses." + id); err != nil && err != unix.ENOSYS {
		return fmt.Errorf("join session keyring: %w", err)
	}
	return nil
}

// setupConsole creates the container's pty (in its own devpts, after
// pivot_root), sends the master to the console socket (runc's protocol: one
// SCM_RIGHTS message whose data is the pty name) and makes the slave init's
// controlling terminal and stdio. For create, console bind-mounts the slave
// at /dev/console (runtime-spec config-linux "Devices"); exec passes nil.
func setupConsole(sockFd int, console consoleMounter) error {
	if sockFd <= 0 {
		return fmt.Errorf("terminal requested without a console socket")
	}
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("ptsname: %w", err)
	}
	// TIOCGPTPEER opens the slave from the master itself, not by a path
	// the container could have replaced.
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e != 0 {
		return fmt.Errorf("open pty slave: %w", e)
	}
	name := "/dev/pts/" + strconv.Itoa(int(n))
	slaveFile := os.NewFile(r, name)
	defer slaveFile.Close()
	slave := int(slaveFile.Fd())
	if console != nil {
		if err := console.MountConsole(slaveFile); err != nil {
			return err
		}
	}
	if err := unix.Sendmsg(sockFd, []byte(name), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send pty to console socket: %w", err)
	}
	unix.Close(sockFd)
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup pty: %w", err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}

// consoleMounter bind-mounts a pty at the container's /dev/console, checking
// that neither end is a symlink or a file it must not cover (rootfs.Root).
type consoleMounter interface {
	MountConsole(pty *os.File) error
}

// prepareExec applies the process's settings up to the privilege drop.
// Rlimits, scheduling and the cwd come while init still holds every
// capability; setuid comes after the bounding set is cut (that needs
// CAP_SETPCAP) and before the final capability sets (setuid clears them
// unless PR_SET_KEEPCAPS).
func prepareExec(spec *specs.Spec, p *specs.Process, cfg *Config, prog *seccomp.Program, listener int) error {
	// Only stdio and the preserved fds reach the container: mark every
	// other inherited fd close-on-exec (CVE-2024-21626: a leaked fd of a
	// host directory is a way out of the root); whatever init opens
	// later is opened close-on-exec. Done first, as a seccomp filter
	// loaded below may not allow close_range.
	if err := unix.CloseRange(uint(3+cfg.PreserveFDs), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if err := setSched(spec, p); err != nil {
		return err
	}
	if err := setLabels(p); err != nil {
		return err
	}
	if err := chdirInRoot(p.Cwd); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	} else if prog != nil {
		// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN,
		// which is about to go: load it now.
		if err := installSeccomp(prog, spec, cfg, listener); err != nil {
			return err
		}
	}
	if p.Capabilities != nil {
		if err := caps.DropBounding(p.Capabilities); err != nil {
			return fmt.Errorf("capabilities: %w", err)
		}
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if p.Capabilities != nil {
		if err := caps.Apply(p.Capabilities); err != nil {
			return fmt.Errorf("capabilities: %w", err)
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	return nil
}

// setUser switches credentials with raw syscalls, which act on this thread
// only (Go's syscall.Setuid changes every thread): this thread is the one
// that execs, and PR_SET_KEEPCAPS is per thread too.
func setUser(u specs.User) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	groups := make([]uint32, len(u.AdditionalGids))
	copy(groups, u.AdditionalGids)
	var gp uintptr
	if len(groups) > 0 {
		gp = uintptrOf(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), gp, 0); e != 0 {
		// A user namespace made by an unprivileged (rootless) runtime
		// denies setgroups; with no groups asked for, runc goes on too.
		if !(e == unix.EPERM && len(groups) == 0 && setgroupsDenied()) {
			return fmt.Errorf("setgroups %v: %w", groups, e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return nil
}

// setgroupsDenied reports whether this user namespace denies setgroups.
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

// chdirInRoot enters cwd and checks that it lies inside the root:
// getcwd(2) reports a directory outside it with an "(unreachable)" prefix
// (CVE-2024-21626 used a cwd of /proc/self/fd/<leaked host fd>).
func chdirInRoot(cwd string) error {
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd %q: %w", cwd, err)
	}
	buf := make([]byte, 4096)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return fmt.Errorf("cwd %q is outside the container root: %w", cwd, err)
	}
	if n == 0 || buf[0] != '/' {
		return fmt.Errorf("cwd %q is outside the container root", cwd)
	}
	return nil
}

func setRlimits(rls []specs.POSIXRlimit) error {
	for _, rl := range rls {
		res, ok := Rlimits[rl.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		// syscall.Setrlimit, not prlimit: Go raised its own NOFILE soft
		// limit at startup and restores the original on exec unless the
		// limit was set through syscall.Setrlimit.
		lim := syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		if err := syscall.Setrlimit(res, &lim); err != nil {
			return fmt.Errorf("rlimit %s: %w", rl.Type, err)
		}
	}
	return nil
}

// Rlimits maps the spec's rlimit names to resources.
var Rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

func setSched(spec *specs.Spec, p *specs.Process) error {
	if spec.Linux != nil && spec.Linux.Personality != nil {
		if err := setPersonality(spec.Linux.Personality); err != nil {
			return err
		}
	}
	if io := p.IOPriority; io != nil {
		class, ok := ioClasses[io.Class]
		if !ok {
			return fmt.Errorf("ioPriority: unknown class %q", io.Class)
		}
		const whoProcess = 1
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(class<<13|int(io.Priority))); e != 0 {
			return fmt.Errorf("ioprio_set: %w", e)
		}
	}
	if sc := p.Scheduler; sc != nil {
		attr, err := schedAttr(sc)
		if err != nil {
			return err
		}
		if err := unix.SchedSetAttr(0, attr, 0); err != nil {
			return fmt.Errorf("sched_setattr: %w", err)
		}
	}
	return nil
}

var ioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

func schedAttr(sc *specs.Scheduler) (*unix.SchedAttr, error) {
	pol, ok := schedPolicies[sc.Policy]
	if !ok {
		return nil, fmt.Errorf("scheduler: unknown policy %q", sc.Policy)
	}
	a := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: pol, Nice: sc.Nice, Priority: uint32(sc.Priority),
		Runtime: sc.Runtime, Deadline: sc.Deadline, Period: sc.Period}
	for _, f := range sc.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return nil, fmt.Errorf("scheduler: unknown flag %q", f)
		}
		a.Flags |= v
	}
	return a, nil
}

func setPersonality(p *specs.LinuxPersonality) error {
	var dom uintptr
	switch p.Domain {
	case specs.PerLinux:
		dom = 0x0000
	case specs.PerLinux32:
		dom = 0x0008
	default:
		return fmt.Errorf("personality: unknown domain %q", p.Domain)
	}
	if len(p.Flags) > 0 {
		return fmt.Errorf("personality flags %v are not supported", p.Flags)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, dom, 0, 0); e != 0 {
		return fmt.Errorf("personality: %w", e)
	}
	return nil
}

// setLabels asks the LSM to label the next exec. The parent refused labels
// for an LSM the host lacks; this runs after pivot_root, against the
// container's procfs, verified as one.
func setLabels(p *specs.Process) error {
	if p.ApparmorProfile == "" && p.SelinuxLabel == "" {
		return nil
	}
	proc, err := procfs.Open()
	if err != nil {
		return err
	}
	defer proc.Close()
	if p.ApparmorProfile != "" {
		if err := proc.WriteFile("self/attr/apparmor/exec", []byte("exec "+p.ApparmorProfile)); err != nil {
			return fmt.Errorf("apparmor profile: %w", err)
		}
	}
	if p.SelinuxLabel != "" {
		if err := proc.WriteFile("self/attr/exec", []byte(p.SelinuxLabel)); err != nil {
			return fmt.Errorf("selinux label: %w", err)
		}
	}
	return nil
}

// dialListener connects to the seccomp notify listener before pivot_root,
// while its (host) path is reachable, and returns the socket, or -1 without
// a listener. A plain blocking socket, not package net: init links no
// network code, whose package initializers and data every container start
// would pay for.
func dialListener(spec *specs.Spec) (int, error) {
	if spec.Linux == nil || spec.Linux.Seccomp == nil || spec.Linux.Seccomp.ListenerPath == "" {
		return -1, nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("seccomp listener: socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: spec.Linux.Seccomp.ListenerPath}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("seccomp listener: connect %s: %w", spec.Linux.Seccomp.ListenerPath, err)
	}
	return fd, nil
}

// installSeccomp loads the filter; with a notify action it sends the
// listener fd and the container process state to listenerPath (runtime-spec
// "Seccomp": one SCM_RIGHTS message carrying ContainerProcessState).
func installSeccomp(prog *seccomp.Program, spec *specs.Spec, cfg *Config, listener int) error {
	fd, err := seccomp.Install(prog)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	if listener < 0 {
		return fmt.Errorf("seccomp: the profile uses SCMP_ACT_NOTIFY but has no listenerPath")
	}
	defer unix.Close(listener)
	st := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: cfg.State.Pid,
		Metadata: spec.Linux.Seccomp.ListenerMetadata, State: cfg.State,
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(listener, b, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("seccomp: send notify fd: %w", err)
	}
	return nil
}

// LookPath finds file on the PATH of the container's environment.
func LookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", file)
}

// hostProcWritesOOM sets oom_score_adj for exec, through the container's
// procfs (we are in its mount namespace), verified as a procfs.
func hostProcWritesOOM(p *specs.Process) error {
	proc, err := procfs.Open()
	if err != nil {
		return err
	}
	defer proc.Close()
	if err := proc.WriteFile("self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj))); err != nil {
		return fmt.Errorf("oomScoreAdj: %w", err)
	}
	return nil
}
