// Command tenantprobe is the hostile tenant of tests/security's engine
// tests: a static binary copied into a test image and run inside containers
// started by the estiba daemon with its defaults. Each subcommand attempts
// one class of attack and prints one line per attempt:
//
//	ESCAPE <what>: <detail>   the attack worked (the test fails)
//	ok <what>: <why it failed>
//	INFO <key> <value>         facts the test compares across containers
//
// and "DONE" at the end, so a probe that dies midway is noticed. Every
// attempt is made so that, should it succeed, it changes nothing on the
// host (files are opened for writing but not written, clocks are set to
// the time they hold).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tenantprobe PROBE [ARGS]")
		os.Exit(2)
	}
	probes := map[string]func([]string){
		"mount":     probeMount,
		"unshare":   probeUnshare,
		"keyring":   probeKeyring,
		"procscan":  probeProcScan,
		"hostpids":  probeHostPids,
		"killall":   probeKillAll,
		"writes":    probeWrites,
		"devices":   probeDevices,
		"chroot":    probeChroot,
		"fds":       probeFds,
		"sockets":   probeSockets,
		"identity":  probeIdentity,
		"clock":     probeClock,
		"oomadj":    probeOOMAdj,
		"forkbomb":  probeForkBomb,
		"whoami":    probeWhoami,
		"filecaps":  probeFileCaps,
		"setuid":    probeSetuid,
		"bigline":   probeBigLine,
		"hardlink":  probeHardlink,
		"rawspoof":  probeRawSpoof,
		"tcpreach":  probeTCPReach,
		"udplisten": probeUDPListen,
		"execrace":  probeExecRace,
		"kmsg":      probeKmsg,
		"bpf":       probeBPF,
		"userfault": probeUserfault,
	}
	p, ok := probes[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "tenantprobe: unknown probe %q\n", os.Args[1])
		os.Exit(2)
	}
	p(os.Args[2:])
	fmt.Println("DONE")
}

// verdict prints ESCAPE when err is nil (the attack worked), ok otherwise.
func verdict(what string, err error) {
	if err == nil {
		fmt.Printf("ESCAPE %s: succeeded\n", what)
		return
	}
	fmt.Printf("ok %s: %v\n", what, err)
}

func escape(what, format string, a ...any) {
	fmt.Printf("ESCAPE %s: %s\n", what, fmt.Sprintf(format, a...))
}

func info(key string, value any) { fmt.Printf("INFO %s %v\n", key, value) }

// probeMount: every way of changing the mount table, which would unmask
// /proc and /sys paths, remount them read-write, or mount a fresh cgroup
// v1 hierarchy with a writable release_agent (CVE-2022-0492).
func probeMount(_ []string) {
	dir := "/dev/shm/hostile-mnt"
	os.Mkdir(dir, 0o700)
	verdict("mount tmpfs", unix.Mount("none", dir, "tmpfs", 0, ""))
	verdict("mount proc", unix.Mount("proc", dir, "proc", 0, ""))
	verdict("mount sysfs", unix.Mount("sysfs", dir, "sysfs", 0, ""))
	verdict("mount cgroup v1 (release_agent)", unix.Mount("cgroup", dir, "cgroup", 0, "none,name=hostile"))
	verdict("mount cgroup v1 rdma", unix.Mount("cgroup", dir, "cgroup", 0, "rdma"))
	verdict("mount cgroup2", unix.Mount("cgroup2", dir, "cgroup2", 0, ""))
	verdict("bind / elsewhere", unix.Mount("/", dir, "", unix.MS_BIND|unix.MS_REC, ""))
	verdict("remount /proc/sys rw", unix.Mount("", "/proc/sys", "", unix.MS_REMOUNT|unix.MS_BIND, ""))
	verdict("remount /sys rw", unix.Mount("", "/sys", "", unix.MS_REMOUNT, ""))
	verdict("remount /sys/fs/cgroup rw", unix.Mount("", "/sys/fs/cgroup", "", unix.MS_REMOUNT|unix.MS_BIND, ""))
	verdict("make / shared", unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""))
	for _, p := range []string{"/proc/sys", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/etc/hosts", "/sys/fs/cgroup", "/proc"} {
		verdict("umount "+p, unix.Unmount(p, unix.MNT_DETACH))
	}
	verdict("pivot_root", unix.PivotRoot(dir, dir))
	fd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	verdict("fsopen tmpfs", err)
	if err == nil {
		unix.Close(fd)
	}
	tfd, err := unix.OpenTree(unix.AT_FDCWD, "/proc", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	verdict("open_tree clone /proc", err)
	if err == nil {
		unix.Close(tfd)
	}
	os.Remove(dir)
}

// probeUnshare: new namespaces of every kind, nested user namespaces first
// (they hand the tenant CAP_SYS_ADMIN over fresh mounts and a larger
// kernel attack surface), by clone and by clone3.
func probeUnshare(_ []string) {
	flags := []struct {
		name string
		f    uintptr
	}{
		{"user", unix.CLONE_NEWUSER},
		{"user+mount", unix.CLONE_NEWUSER | unix.CLONE_NEWNS},
		{"user+net", unix.CLONE_NEWUSER | unix.CLONE_NEWNET},
		{"user+cgroup", unix.CLONE_NEWUSER | unix.CLONE_NEWCGROUP},
		{"mount", unix.CLONE_NEWNS},
		{"net", unix.CLONE_NEWNET},
		{"pid", unix.CLONE_NEWPID},
		{"uts", unix.CLONE_NEWUTS},
		{"ipc", unix.CLONE_NEWIPC},
		{"cgroup", unix.CLONE_NEWCGROUP},
		{"time", unix.CLONE_NEWTIME},
	}
	for _, f := range flags {
		cmd := exec.Command("/proc/self/exe", "whoami")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: f.f}
		out, err := cmd.CombinedOutput()
		if err == nil && !strings.Contains(string(out), "DONE") {
			err = fmt.Errorf("child ran but printed %q", out)
		}
		verdict("clone new "+f.name+" namespace", err)
	}
	// busybox's unshare calls unshare(2) from a single-threaded process.
	out, err := exec.Command("/bin/unshare", "-U", "-r", "/bin/true").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	verdict("unshare -U -r", err)
	// clone3 is refused (ENOSYS) by the default profile so that callers
	// fall back to clone, whose flags seccomp can inspect.
	args := cloneArgs{flags: unix.CLONE_NEWUSER, exitSignal: uint64(unix.SIGCHLD)}
	r, _, errno := unix.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args), 0)
	if errno == 0 && r == 0 {
		unix.RawSyscall(unix.SYS_EXIT, 0, 0, 0)
	}
	if errno == 0 {
		var ws unix.WaitStatus
		unix.Wait4(int(r), &ws, 0, nil)
		verdict("clone3 new user namespace", nil)
	} else {
		verdict("clone3 new user namespace", errno)
	}
	verdict("setns into own pid namespace (needs CAP_SYS_ADMIN)", setnsPath("/proc/1/ns/pid"))
}

// cloneArgs is struct clone_args up to CLONE_ARGS_SIZE_VER0.
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls uint64
}

func setnsPath(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, 0)
}

// probeKeyring: the kernel keyring is not namespaced by containers; the
// default profile refuses its syscalls.
func probeKeyring(_ []string) {
	_, err := unix.AddKey("user", "hostile-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
	verdict("add_key", err)
	_, err = unix.KeyctlJoinSessionKeyring("hostile-probe")
	verdict("keyctl join session keyring", err)
	_, err = unix.RequestKey("user", "hostile-probe", "", unix.KEY_SPEC_PROCESS_KEYRING)
	if errors.Is(err, unix.ENOKEY) {
		err = nil // the call went through to the keyring
	}
	verdict("request_key", err)
}

// probeProcScan looks through every process this container can see for
// another container's secret (its environment or command line) and for a
// way into another root: args are the secret and a file only the other
// container has.
func probeProcScan(args []string) {
	// The secret comes reversed: our own command line must not hold it.
	r := []rune(args[0])
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	secret, file := string(r), args[1]
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		n++
		for _, f := range []string{"environ", "cmdline"} {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if strings.Contains(string(b), secret) {
				escape("read other container's /proc/"+f, "pid %d", pid)
			}
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root%s", pid, file)); err == nil {
			escape("other container's root via /proc/pid/root", "pid %d", pid)
		}
	}
	info("visible-pids", n)
	for _, p := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), secret) {
			escape("secret in "+p, "")
		}
	}
	fmt.Println("ok scanned /proc: no other container's data")
}

// probeHostPids: the daemon's and monitor's host pids, given as args, must
// name nothing this container can signal, trace or read.
func probeHostPids(args []string) {
	for _, a := range args {
		pid, _ := strconv.Atoi(a)
		if pid < 200 {
			// Could collide with a pid of our own namespace.
			continue
		}
		verdict("kill -0 host pid "+a, unix.Kill(pid, 0))
		fd, err := unix.PidfdOpen(pid, 0)
		verdict("pidfd_open host pid "+a, err)
		if err == nil {
			unix.Close(fd)
		}
		verdict("ptrace attach host pid "+a, unix.PtraceAttach(pid))
		local := make([]byte, 8)
		_, err = unix.ProcessVMReadv(pid, []unix.Iovec{{Base: &local[0], Len: 8}}, []unix.RemoteIovec{{Base: 0x400000, Len: 8}}, 0)
		verdict("process_vm_readv host pid "+a, err)
	}
}

// probeKillAll sends SIGKILL to every process it may signal (kill(-1)):
// only the container's own processes may die.
func probeKillAll(_ []string) {
	err := unix.Kill(-1, unix.SIGKILL)
	fmt.Printf("ok kill(-1, SIGKILL) returned %v\n", err)
}

// probeWrites opens, for writing and without writing anything, every
// host-wide knob a container must not turn.
func probeWrites(_ []string) {
	paths := []string{
		"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/vm/drop_caches",
		"/proc/sys/kernel/hostname", "/proc/sys/net/ipv4/ip_forward", "/proc/sysrq-trigger",
		"/sys/kernel/uevent_helper", "/sys/kernel/mm/ksm/run", "/sys/power/state", "/sys/class/net/lo/mtu",
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, d := range append(cg, "/sys/fs/cgroup") {
		for _, f := range []string{"release_agent", "notify_on_release", "cgroup.procs", "tasks", "pids.max", "memory.limit_in_bytes", "devices.allow", "cgroup.subtree_control", "cgroup.clone_children"} {
			paths = append(paths, filepath.Join(d, f))
		}
		verdict("mkdir cgroup "+d+"/hostile", os.Mkdir(filepath.Join(d, "hostile"), 0o755))
	}
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			f.Close()
		}
		verdict("open for writing "+p, err)
	}
	for _, p := range []string{"/proc/kcore", "/proc/kallsyms", "/proc/keys", "/proc/timer_list", "/sys/firmware/efi", "/sys/kernel/debug/tracing/trace", "/sys/kernel/security", "/proc/1/mem"} {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			buf := make([]byte, 64)
			n, rerr := f.Read(buf)
			f.Close()
			if n > 0 && p != "/proc/1/mem" && p != "/proc/kallsyms" {
				escape("read "+p, "%d bytes", n)
				continue
			}
			if p == "/proc/kallsyms" && n > 0 && !strings.HasPrefix(string(buf), "0000000000000000") {
				escape("read kernel addresses from /proc/kallsyms", "%q", buf[:n])
				continue
			}
			err = fmt.Errorf("opened, read gave %d bytes (%v)", n, rerr)
		}
		fmt.Printf("ok read %s: %v\n", p, err)
	}
}

// probeDevices makes device nodes and looks at /dev: only the harmless
// default devices may be there, and no new one may open.
func probeDevices(_ []string) {
	nodes := []struct {
		name       string
		mode       uint32
		major, min uint32
	}{
		{"mem", unix.S_IFCHR, 1, 1}, {"kmsg", unix.S_IFCHR, 1, 11}, {"port", unix.S_IFCHR, 1, 4},
		{"sda", unix.S_IFBLK, 8, 0}, {"vda", unix.S_IFBLK, 254, 0}, {"loop0", unix.S_IFBLK, 7, 0},
		{"tun", unix.S_IFCHR, 10, 200}, {"fuse", unix.S_IFCHR, 10, 229},
	}
	for _, dir := range []string{"/dev", "/dev/shm", "/tmp"} {
		for _, n := range nodes {
			p := filepath.Join(dir, "hostile-"+n.name)
			err := unix.Mknod(p, n.mode|0o600, int(unix.Mkdev(n.major, n.min)))
			if err == nil {
				f, oerr := os.OpenFile(p, os.O_RDONLY, 0)
				if oerr == nil {
					f.Close()
					escape("mknod+open "+p, "")
				} else {
					fmt.Printf("ok mknod %s made a node that does not open: %v\n", p, oerr)
				}
				os.Remove(p)
				continue
			}
			verdict("mknod "+p, err)
		}
	}
	allowed := map[string]bool{"null": true, "zero": true, "full": true, "random": true, "urandom": true, "tty": true,
		"console": true, "pts": true, "ptmx": true, "shm": true, "mqueue": true, "fd": true, "stdin": true, "stdout": true, "stderr": true, "core": true}
	ents, _ := os.ReadDir("/dev")
	for _, e := range ents {
		if !allowed[e.Name()] {
			escape("unexpected /dev entry", "/dev/%s", e.Name())
		}
	}
	verdict("open /dev/net/tun", openErr("/dev/net/tun"))
	verdict("open /dev/fuse", openErr("/dev/fuse"))
}

func openErr(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	return err
}

// probeChroot is the classic chroot escape (CAP_SYS_CHROOT is a default
// capability): chroot into a subdirectory, climb out with "..", chroot to
// where we landed. pivot_root'ed containers must land back on their own
// root, which holds the image's marker file.
func probeChroot(args []string) {
	marker := args[0]
	dir := "/dev/shm/hostile-chroot"
	os.Mkdir(dir, 0o700)
	defer os.Remove(dir)
	// Done in this process: the probe exits right after.
	wd, _ := os.Open("/")
	if err := unix.Chroot(dir); err != nil {
		fmt.Printf("ok chroot: %v\n", err)
		return
	}
	unix.Fchdir(int(wd.Fd()))
	for i := 0; i < 64; i++ {
		unix.Chdir("..")
	}
	if err := unix.Chroot("."); err != nil {
		fmt.Printf("ok chroot back: %v\n", err)
		return
	}
	if _, err := os.Stat(marker); err != nil {
		ents, _ := os.ReadDir("/")
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		escape("chroot breakout", "root after the climb lacks %s: %v", marker, names)
		return
	}
	fmt.Println("ok chroot breakout lands on the container's own root")
}

// probeFds lists the descriptors of the given processes (the shell that
// started the probe, as the runtime left it): anything but stdio, pipes,
// sockets, ttys and /dev/null would be a descriptor leaked from the daemon,
// monitor or runtime (CVE-2024-21626 class). The probe's own descriptors
// are not looked at: Go's runtime keeps cgroup files open.
func probeFds(args []string) {
	for _, pid := range args {
		dir := "/proc/" + pid + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			escape("list "+dir, "%v", err)
			continue
		}
		for _, e := range ents {
			target, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil {
				continue // our own ReadDir descriptor, closed already
			}
			switch {
			case strings.HasPrefix(target, "pipe:"), strings.HasPrefix(target, "socket:"),
				strings.HasPrefix(target, "anon_inode:"), strings.HasPrefix(target, "/dev/pts/"),
				target == "/dev/null", target == "/dev/tty", strings.HasPrefix(target, "/proc/") && strings.HasSuffix(target, "/fd"):
				fmt.Printf("ok fd %s/%s -> %s\n", pid, e.Name(), target)
			default:
				escape("leaked descriptor", "%s/%s -> %s", dir, e.Name(), target)
			}
		}
	}
}

// probeSockets: no unix socket of the host (the daemon's, the monitor's,
// docker's) may be reachable; args are extra socket paths to try.
func probeSockets(args []string) {
	paths := append([]string{"/run/estiba/estiba.sock", "/var/run/docker.sock", "/run/containerd/containerd.sock", "/run/estiba/monitor.sock"}, args...)
	for _, p := range paths {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Printf("ok socket: %v\n", err)
			return
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: p})
		unix.Close(fd)
		verdict("connect "+p, err)
	}
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		fmt.Printf("ok /proc/net/unix: %v\n", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 8 && (strings.HasPrefix(fields[7], "/") || strings.HasPrefix(fields[7], "@")) {
			escape("host unix socket visible in /proc/net/unix", "%s", fields[7])
		}
	}
}

// probeIdentity reports what the test compares across containers.
func probeIdentity(_ []string) {
	for _, f := range []string{"uid_map", "gid_map"} {
		b, _ := os.ReadFile("/proc/self/" + f)
		info(f, strings.Join(strings.Fields(string(b)), ","))
	}
	h, _ := os.Hostname()
	info("hostname", h)
	b, _ := os.ReadFile("/etc/hosts")
	info("hosts", strings.Join(strings.Fields(string(b)), ","))
	b, _ = os.ReadFile("/proc/sys/kernel/random/boot_id")
	info("boot_id", strings.TrimSpace(string(b)))
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	info("monotonic", ts.Sec)
	b, _ = os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if parts := strings.SplitN(l, ":", 3); len(parts) == 3 && parts[2] != "/" {
			escape("host cgroup path visible", "%s", l)
		}
	}
	verdict("sethostname", unix.Sethostname([]byte(h)))
	verdict("setdomainname", unix.Setdomainname([]byte("(none)")))
}

// probeClock sets the clocks to the time they hold: harmless if it works,
// but CAP_SYS_TIME is host-wide.
func probeClock(_ []string) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	verdict("clock_settime", unix.ClockSettime(unix.CLOCK_REALTIME, &ts))
	tv := unix.NsecToTimeval(time.Now().UnixNano())
	verdict("settimeofday", unix.Settimeofday(&tv))
	tx := unix.Timex{Modes: unix.ADJ_OFFSET | unix.ADJ_STATUS}
	_, err := unix.Adjtimex(&tx)
	verdict("adjtimex", err)
}

// probeOOMAdj: the tenant must not make itself less killable than its
// neighbours, nor be spared by inheritance from the supervisor.
func probeOOMAdj(_ []string) {
	b, _ := os.ReadFile("/proc/self/oom_score_adj")
	info("oom_score_adj", strings.TrimSpace(string(b)))
	cur, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(cur-1)), 0)
	verdict("lower oom_score_adj", err)
}

// probeForkBomb forks paused children until the kernel says no, then
// reports how many it got (the pids limit bounds it). The children are
// bare clones that only pause: they touch nothing of the Go runtime and die
// with the container.
func probeForkBomb(args []string) {
	max := 100000
	if len(args) > 0 {
		max, _ = strconv.Atoi(args[0])
	}
	n := 0
	var lastErr error
	for n < max {
		pid, _, errno := unix.RawSyscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0)
		if errno != 0 {
			lastErr = errno
			break
		}
		if pid == 0 {
			for {
				unix.RawSyscall(unix.SYS_PAUSE, 0, 0, 0)
			}
		}
		n++
	}
	info("forked", n)
	info("fork-error", lastErr)
	b, _ := os.ReadFile("/sys/fs/cgroup/pids/pids.max")
	if len(b) == 0 {
		b, _ = os.ReadFile("/sys/fs/cgroup/pids.max")
	}
	info("pids.max", strings.TrimSpace(string(b)))
	if len(args) > 1 {
		// Hold the children while the test checks the host.
		d, _ := time.ParseDuration(args[1])
		fmt.Println("HOLDING")
		time.Sleep(d)
	}
}

func probeWhoami(_ []string) {
	info("uid", os.Getuid())
	info("euid", os.Geteuid())
}

// probeFileCaps runs as a non-root user from a binary carrying file
// capabilities (cap_setuid, cap_dac_override +ep): no_new_privs and the
// unmapped owner of the capability must keep it from gaining any.
func probeFileCaps(_ []string) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "CapEff:") || strings.HasPrefix(l, "CapPrm:") {
			if f := strings.Fields(l); len(f) == 2 && strings.Trim(f[1], "0") != "" {
				escape("file capabilities granted", "%s as uid %d", l, os.Getuid())
			}
		}
	}
	if os.Getuid() != 0 {
		verdict("setuid(0) from a file-capability binary", unix.Setuid(0))
	}
}

// probeSetuid runs the image's setuid-root copy of this probe as the
// (non-root) current user: no_new_privs must keep the effective uid.
func probeSetuid(args []string) {
	out, err := exec.Command(args[0], "whoami").CombinedOutput()
	if err != nil {
		fmt.Printf("ok setuid binary did not run: %v %s\n", err, out)
		return
	}
	for _, l := range strings.Split(string(out), "\n") {
		if l == "INFO euid 0" {
			escape("setuid root binary", "euid 0 for uid %d", os.Getuid())
			return
		}
	}
	fmt.Printf("ok setuid binary kept the caller's euid: %s\n", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " "))
}

// probeBigLine writes size bytes to stdout with no newline.
func probeBigLine(args []string) {
	size, _ := strconv.Atoi(args[0])
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = 'x'
	}
	// Terminal escapes and a fake json-file record in the middle.
	os.Stdout.WriteString("\x1b]0;owned\x07\x1b[2J\"},{\"log\":\"forged\\n\",\"stream\":\"stderr\"}")
	for size > 0 {
		n := min(size, len(buf))
		os.Stdout.Write(buf[:n])
		size -= n
	}
}

// probeHardlink tries to hard-link the /etc files into a place the tenant
// writes. They are files of its own layer, or, with a volume at /etc,
// files of the daemon's state directory bind-mounted (their content is the
// container's own: its root may edit them, as with Docker).
func probeHardlink(_ []string) {
	for _, src := range []string{"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"} {
		dst := "/dev/shm/hostile-link"
		err := os.Link(src, dst)
		if err == nil {
			os.Remove(dst)
		}
		verdict("hard link "+src, err)
	}
}

// probeRawSpoof sends, with CAP_NET_RAW, a UDP datagram to args[0]:args[1]
// with the forged source address args[2].
func probeRawSpoof(args []string) {
	dst, port, src := args[0], args[1], args[2]
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		fmt.Printf("ok raw socket: %v\n", err)
		return
	}
	defer unix.Close(fd)
	p, _ := strconv.Atoi(port)
	payload := []byte("spoofed")
	pkt := udpPacket(parseIP4(src), parseIP4(dst), 40000, uint16(p), payload)
	var sa unix.SockaddrInet4
	copy(sa.Addr[:], parseIP4(dst))
	for i := 0; i < 5; i++ {
		if err := unix.Sendto(fd, pkt, 0, &sa); err != nil {
			fmt.Printf("ok sendto: %v\n", err)
			return
		}
	}
	fmt.Println("SENT spoofed datagrams")
}

func parseIP4(s string) []byte {
	var b [4]byte
	for i, p := range strings.SplitN(s, ".", 4) {
		v, _ := strconv.Atoi(p)
		b[i] = byte(v)
	}
	return b[:]
}

func udpPacket(src, dst []byte, sport, dport uint16, payload []byte) []byte {
	l := 20 + 8 + len(payload)
	b := make([]byte, l)
	b[0], b[8], b[9] = 0x45, 64, unix.IPPROTO_UDP
	b[2], b[3] = byte(l>>8), byte(l)
	copy(b[12:16], src)
	copy(b[16:20], dst)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	cs := ^uint16(sum)
	b[10], b[11] = byte(cs>>8), byte(cs)
	u := b[20:]
	u[0], u[1], u[2], u[3] = byte(sport>>8), byte(sport), byte(dport>>8), byte(dport)
	u[4], u[5] = byte((8+len(payload))>>8), byte(8+len(payload))
	copy(u[8:], payload) // checksum 0: none, allowed for UDP over IPv4
	return b
}

// probeExecRace watches, for a while, every process that appears in the
// container (the test execs into it meanwhile) and tries what CVE-2016-9962
// and CVE-2019-5736 did: trace a process that is joining the container,
// take its descriptors, open its binary. Whatever joins must already be
// the container's (non-dumpable until then, descriptors closed). It stops
// after args[0] or once /dev/shm/execrace-stop exists.
func probeExecRace(args []string) {
	d, _ := time.ParseDuration(args[0])
	self := os.Getpid()
	seen := map[int]bool{}
	tries := 0
	fmt.Println("WATCHING")
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, err := os.Stat("/dev/shm/execrace-stop"); err == nil {
			break
		}
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self || pid == 1 || seen[pid] {
				continue
			}
			seen[pid] = true
			tries++
			raceOne(pid)
		}
	}
	info("processes-seen", tries)
}

func raceOne(pid int) {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if f, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), os.O_RDONLY, 0); err == nil {
		st, _ := f.Stat()
		f.Close()
		if _, err := os.Stat(exe); err != nil {
			escape("opened a joining process's binary from outside the container", "pid %d exe %s (%d bytes)", pid, exe, st.Size())
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		p := fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())
		target, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "/dev/") {
			continue
		}
		if _, err := os.Stat(target); err != nil {
			if f, err := os.Open(p); err == nil {
				f.Close()
				escape("opened a joining process's descriptor to the host", "pid %d fd %s -> %s", pid, fd.Name(), target)
			}
		}
	}
	err := unix.PtraceAttach(pid)
	if err == nil {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		if _, err := os.Stat(exe); err != nil && exe != "" {
			escape("traced a joining process", "pid %d exe %s", pid, exe)
		}
		unix.PtraceDetach(pid)
	}
}

// probeUDPListen prints every datagram received on port args[0] with its
// source address, forever (the victim side of rawspoof).
func probeUDPListen(args []string) {
	p, _ := strconv.Atoi(args[0])
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		fmt.Println("socket:", err)
		return
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: p}); err != nil {
		fmt.Println("bind:", err)
		return
	}
	fmt.Println("LISTENING")
	buf := make([]byte, 2048)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			fmt.Println("recvfrom:", err)
			return
		}
		if sa, ok := from.(*unix.SockaddrInet4); ok {
			fmt.Printf("RECEIVED %q from %d.%d.%d.%d\n", buf[:n], sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3])
		}
	}
}

// probeTCPReach dials each host:port argument: it must not connect.
func probeTCPReach(args []string) {
	for _, a := range args {
		host, port, _ := strings.Cut(a, ":")
		p, _ := strconv.Atoi(port)
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Printf("ok socket: %v\n", err)
			return
		}
		sa := &unix.SockaddrInet4{Port: p}
		copy(sa.Addr[:], parseIP4(host))
		tv := unix.Timeval{Sec: 2}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		err = unix.Connect(fd, sa)
		unix.Close(fd)
		verdict("connect tcp "+a, err)
	}
}

// probeKmsg: the kernel log is host-wide.
func probeKmsg(_ []string) {
	buf := make([]byte, 256)
	_, err := unix.Klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf)
	verdict("syslog(READ_ALL)", err)
	f, err := os.Open("/proc/kmsg")
	if err == nil {
		f.Close()
	}
	if !errors.Is(err, os.ErrNotExist) {
		verdict("open /proc/kmsg", err)
	}
}

// probeBPF: loading programs, perf events and module loading are
// host-wide.
func probeBPF(_ []string) {
	attr := make([]byte, 128)
	_, _, errno := unix.Syscall(unix.SYS_BPF, 0 /* BPF_MAP_CREATE */, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	verdict("bpf", errnoErr(errno))
	_, _, errno = unix.Syscall(unix.SYS_INIT_MODULE, 0, 0, 0)
	verdict("init_module", errnoErr(errno))
	pa := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK}
	pa.Size = uint32(unsafe.Sizeof(pa))
	fd, err := unix.PerfEventOpen(&pa, -1, 0, -1, 0)
	if err == nil {
		unix.Close(fd)
	}
	verdict("perf_event_open system-wide", err)
	verdict("reboot", unix.Reboot(0 /* LINUX_REBOOT_CMD_CAD_OFF */))
	// io_uring: a large kernel attack surface that seccomp cannot see
	// into; Docker's profile leaves it out.
	params := make([]byte, 120)
	fd2, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno == 0 {
		unix.Close(int(fd2))
	}
	verdict("io_uring_setup", errnoErr(errno))
	_, _, errno = unix.Syscall6(unix.SYS_MOVE_PAGES, 1, 0, 0, 0, 0, 0)
	verdict("move_pages of pid 1", errnoErr(errno))
	_, _, errno = unix.Syscall(unix.SYS_KEXEC_LOAD, 0, 0, 0)
	verdict("kexec_load", errnoErr(errno))
	_, _, errno = unix.Syscall(unix.SYS_ACCT, 0, 0, 0)
	verdict("acct", errnoErr(errno))
	_, _, errno = unix.Syscall(unix.SYS_IOPL, 3, 0, 0)
	verdict("iopl", errnoErr(errno))
	_, _, errno = unix.Syscall(unix.SYS_IOPERM, 0x80, 1, 1)
	verdict("ioperm", errnoErr(errno))

	verdict("swapoff", errnoErr(swapoff("/nonexistent")))
}

func swapoff(p string) unix.Errno {
	b, _ := unix.BytePtrFromString(p)
	_, _, errno := unix.Syscall(unix.SYS_SWAPOFF, uintptr(unsafe.Pointer(b)), 0, 0)
	if errno == unix.ENOENT {
		return 0 // the permission check passed
	}
	return errno
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// probeUserfault: unprivileged userfaultfd makes kernel races easy to win.
func probeUserfault(_ []string) {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
	if errno == 0 {
		unix.Close(int(fd))
	}
	verdict("userfaultfd", errnoErr(errno))
}
