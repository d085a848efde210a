package container

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec into a container with its own user or time namespace.
//
// setns(CLONE_NEWUSER) and setns(CLONE_NEWTIME) require a single-threaded
// caller, and a Go process, even the child between fork and exec that Go's
// os/exec drives, never gets to run code of ours single-threaded without
// cgo. Two ways out: a hand-written raw clone whose child runs a nosplit
// function doing setns/setuid/dup2/execve with RawSyscall only, or a tiny
// single-threaded trampoline program that does the joins and execs init.
// We take the trampoline, nsenter(1): the raw clone would duplicate
// syscall.forkAndExecInChild's delicate invariants (no allocation, no stack
// growth, no runtime calls, signal masks, vfork-style stack sharing) in our
// tree, where a mistake corrupts the runtime's memory only sometimes; nsenter
// is a few hundred lines of C that does exactly these joins, is in every
// Debian (util-linux) and in busybox, and costs one more execve (~1 ms) on
// the exec path only.
//
// The chain, one process throughout (nsenter -F does not fork):
//
//   - the runtime, on a locked thread that has joined the container's pid,
//     net, ipc, uts and cgroup namespaces, forks a child that Go switches to
//     the host ids of the container's root (uid/gid 0 mapped) keeping only
//     CAP_SYS_ADMIN, as an ambient capability, and execs nsenter from a
//     sealed execute-only copy (execOnlyCopy);
//   - nsenter joins the time namespace, then the user namespace, through
//     fds the runtime opened (never /proc/<pid>/ns paths, which a recycled
//     pid could redirect), sets uid/gid 0 and no groups inside it, and execs
//     the runtime binary's read-only clone, passed as an inherited fd;
//   - init (initproc.Main), root in the container's user namespace with the
//     full capability set there, joins the mount namespace and proceeds as
//     for any exec.
//
// Security of the window. nsenter runs in the host's mount namespace, so a
// container process that could ptrace it (or open its /proc/<pid>/fd, mem,
// ...) would reach the host's filesystem with its credentials. Before its
// setns, it holds CAP_SYS_ADMIN over the host, which no container process
// has: ptrace needs a superset of the target's capabilities. From its
// setns(CLONE_NEWUSER) on, it is the container's root with the full set in
// the container's user namespace, which a container process holding
// CAP_SYS_PTRACE there would pass. What closes that window is dumpability:
// nsenter is exec'd from a copy its uid cannot read (mode 0111), so the
// kernel marks it non-dumpable at execve (would_dump), with its mm owned by
// the host's user namespace; setns and setuid do not make it dumpable
// again, so ptrace and /proc access need CAP_SYS_PTRACE over the host until
// the next execve. That execve of init is non-dumpable for the same kind of
// reason (its binary's owner, host root, is not mapped in the container;
// where it is, the container's root is the host's anyway), and
// initproc.Main clears dumpable too. It is never host uid 0 inside
// the container's namespace either: unlike the container root, that uid
// owns the host's files.

// nsenterPaths are where util-linux or busybox install nsenter. Fixed
// paths, not $PATH: the runtime runs as root.
var nsenterPaths = []string{"/usr/bin/nsenter", "/bin/nsenter", "/usr/sbin/nsenter", "/sbin/nsenter"}

// trampoline is the plan for entering a user and/or time namespace.
type trampoline struct {
	user, time *os.File
	uid, gid   int
}

// needed reports whether the trampoline has anything to do.
func (t *trampoline) needed() bool { return t.user != nil || t.time != nil }

func (t *trampoline) close() {
	for _, f := range []*os.File{t.user, t.time} {
		if f != nil {
			f.Close()
		}
	}
}

// openTrampoline opens the container's user and time namespaces (pid's)
// and notes the host ids of its root.
func openTrampoline(s *specs.Spec, pid int) (*trampoline, error) {
	t := &trampoline{uid: -1, gid: -1}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.UserNamespace && ns.Type != specs.TimeNamespace {
			continue
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, procNS[ns.Type]))
		if err != nil {
			t.close()
			return nil, fmt.Errorf("%s namespace: %w", ns.Type, err)
		}
		if ns.Type == specs.UserNamespace {
			t.user = f
		} else {
			t.time = f
		}
	}
	if t.user != nil {
		uid, uok := mappedHostID(s.Linux.UIDMappings, 0)
		gid, gok := mappedHostID(s.Linux.GIDMappings, 0)
		if !uok || !gok {
			t.close()
			return nil, fmt.Errorf("exec: the container's user namespace does not map uid and gid 0: %w", ErrUnsupported)
		}
		t.uid, t.gid = uid, gid
	}
	return t, nil
}

// mappedHostID maps container id to the host through m.
func mappedHostID(m []specs.LinuxIDMapping, id uint32) (int, bool) {
	for _, e := range m {
		if id >= e.ContainerID && id-e.ContainerID < e.Size {
			return int(e.HostID + id - e.ContainerID), true
		}
	}
	return 0, false
}

// findNsenter returns the first of paths that exists, resolved, and
// whether it is busybox's, which has no --time.
func findNsenter(paths []string) (string, bool, error) {
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		return real, filepath.Base(real) == "busybox", nil
	}
	return "", false, fmt.Errorf("exec into a container with its own user or time namespace needs nsenter (util-linux or busybox), not found in %v: %w", paths, ErrUnsupported)
}

// wrap rewrites cmd (init's command, from initCmd) to run init through
// nsenter. It returns a release func for the fds it opened, to call once
// the child has exec'd.
func (t *trampoline) wrap(cmd *execCmdT, nsenterPath string, preserveFDs int) (func(), error) {
	paths := nsenterPaths
	if nsenterPath != "" {
		paths = []string{nsenterPath}
	}
	path, busybox, err := findNsenter(paths)
	if err != nil {
		return nil, err
	}
	if busybox && t.time != nil {
		return nil, fmt.Errorf("exec into a container with its own time namespace needs util-linux nsenter (busybox's has no --time): %w", ErrUnsupported)
	}
	exe, err := os.Open(cmd.Path)
	if err != nil {
		return nil, fmt.Errorf("runtime binary: %w", err)
	}
	nsenter, release, err := execOnlyCopy(path, 2*(8+preserveFDs)+16)
	if err != nil {
		exe.Close()
		return nil, err
	}
	fd := func(f *os.File) string {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		return "/proc/self/fd/" + strconv.Itoa(2+len(cmd.ExtraFiles))
	}
	// -F: never fork (both nsenters fork only for a pid namespace by
	// default; say so anyway): the runtime waits for this very process.
	args := []string{"nsenter", "-F"}
	// nsenter enters the time namespace before the user namespace (it
	// joins the user namespace last when it can), while it still has
	// CAP_SYS_ADMIN over the host.
	if t.time != nil {
		args = append(args, "--time="+fd(t.time))
	}
	if t.user != nil {
		// Without --preserve-credentials nsenter sets uid and gid 0
		// (and no supplementary groups) in the user namespace, so init
		// execs as its root with every capability there.
		args = append(args, "--user="+fd(t.user))
	}
	exePath := fd(exe)
	args = append(args, "--", exePath)
	cmd.Args = append(args, cmd.Args[1:]...)
	cmd.Path = nsenter
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if t.user != nil {
		// Never host uid 0 inside the container's user namespace (see
		// above): become the container root's host ids before nsenter,
		// keeping only what setns needs.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(t.uid), Gid: uint32(t.gid)}
		cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
	}
	return func() { release(); exe.Close() }, nil
}

// execOnlyCopy copies the binary at src into a sealed memfd of mode 0111 and
// returns /proc/self/fd/N of a close-on-exec fd N >= low, and its release
// func. A process that execs it without CAP_DAC_OVERRIDE or
// CAP_DAC_READ_SEARCH cannot read the file and so starts non-dumpable (see
// above). nsenter is small (util-linux's is ~35 KB; busybox ~2 MB).
func execOnlyCopy(src string, low int) (string, func(), error) {
	in, err := os.Open(src)
	if err != nil {
		return "", nil, fmt.Errorf("nsenter: %w", err)
	}
	defer in.Close()
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate("nsenter", flags|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// Before Linux 6.3 there is no MFD_EXEC: memfds are executable.
		fd, err = unix.MemfdCreate("nsenter", flags)
	}
	if err != nil {
		return "", nil, fmt.Errorf("memfd for nsenter: %w", err)
	}
	f := os.NewFile(uintptr(fd), "nsenter")
	defer f.Close()
	if _, err := io.Copy(f, in); err != nil {
		return "", nil, fmt.Errorf("copy nsenter: %w", err)
	}
	if err := f.Chmod(0o111); err != nil {
		return "", nil, fmt.Errorf("chmod nsenter copy: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return "", nil, fmt.Errorf("seal nsenter copy: %w", err)
	}
	nfd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, low)
	if err != nil {
		return "", nil, fmt.Errorf("nsenter fd: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", nfd), func() { unix.Close(nfd) }, nil
}
