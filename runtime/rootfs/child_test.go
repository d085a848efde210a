package rootfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The integration tests re-exec the test binary as a child in new mount,
// pid, ipc and network namespaces (the namespaces the runtime gives the
// container's init), where it plays the init: Setup, an optional hostile
// step standing for a createContainer hook, Pivot, then a report of what it
// sees as JSON on stdout.

const (
	envChild  = "ESTIBA_ROOTFS_TEST_CHILD" // the child's job, see childJobs
	envSpec   = "ESTIBA_ROOTFS_TEST_SPEC"  // path of the spec JSON
	envBundle = "ESTIBA_ROOTFS_TEST_BUNDLE"
	envProbe  = "ESTIBA_ROOTFS_TEST_PROBE" // paths to probe, one per line
	envOpts   = "ESTIBA_ROOTFS_TEST_OPTS"  // Options as JSON
	envMaps   = "ESTIBA_ROOTFS_TEST_MAPS"  // set: give Options.UserNS a forking maker
	envSrcs   = "ESTIBA_ROOTFS_TEST_SRCS"  // "index:fd ..." for Options.MountSources
)

func TestMain(m *testing.M) {
	if job := os.Getenv(envChild); job != "" {
		if err := runChild(job); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childJobs are the hostile steps run between Setup and Pivot (or after
// Pivot), by name.
var childJobs = map[string]func(r *Root) error{
	"plain": func(*Root) error { return nil },
	// A hook or a racing container replaces /dev/null with a symlink to a
	// procfs file before masking (CVE-2025-31133).
	"devnull-symlink": func(r *Root) error {
		return replaceWith(r, "dev/null", func(dir int, name string) error {
			return unix.Symlinkat("/proc/sys/kernel/core_pattern", dir, name)
		})
	},
	"devnull-file": func(r *Root) error {
		return replaceWith(r, "dev/null", func(dir int, name string) error {
			fd, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_WRONLY, 0o666)
			if err == nil {
				unix.Close(fd)
			}
			return err
		})
	},
	// /dev/console a symlink to a procfs file (CVE-2025-52565).
	"console-symlink": func(r *Root) error {
		dev, err := openInRoot(r.fd, "dev", unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(dev)
		return unix.Symlinkat("/proc/sys/kernel/core_pattern", dev, "console")
	},
}

// preJobs run in the child before Setup, by job name.
var preJobs = map[string]func(bundle string) error{
	// A submount inside a bind source, to see what rbind and rro do to it.
	// "/" is made a slave first so the mount stays in the child.
	"submount": func(bundle string) error {
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return err
		}
		return unix.Mount("tmpfs", filepath.Join(bundle, "vol/sub"), "tmpfs", 0, "size=1m")
	},
}

func replaceWith(r *Root, path string, mk func(dir int, name string) error) error {
	dir, base := filepath.Split(path)
	dfd, err := openInRoot(r.fd, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, base, 0); err != nil {
		return err
	}
	return mk(dfd, base)
}

// report is what the child sees after Pivot.
type report struct {
	Mounts  []mountEntry
	Probes  map[string]probe
	Console string // error of MountConsole, if the job asked for it
	Exec    string // output of a busybox command, if the job asked for it
}

type mountEntry struct {
	Point, Root, FSType, Opts, Optional, SuperOpts string
}

type probe struct {
	Mode       uint32
	Rdev       uint64
	UID, GID   uint32
	Exists     bool
	Read       string
	ReadErr    string
	WriteErr   string
	CreateErr  string // creating a file in it (directories)
	FSMagic    int64
	IsDir      bool
	IsSymlink  bool
	LinkTarget string
}

func runChild(job string) error {
	b, err := os.ReadFile(os.Getenv(envSpec))
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	hostile, ok := childJobs[strings.TrimSuffix(strings.TrimSuffix(job, "+exec"), "+console")]
	if !ok {
		hostile = childJobs["plain"]
	}
	var opts Options
	if o := os.Getenv(envOpts); o != "" {
		if err := json.Unmarshal([]byte(o), &opts); err != nil {
			return err
		}
	}
	if os.Getenv(envMaps) != "" {
		opts.UserNS = UserNSFunc(NewUserNS)
	}
	for _, pair := range strings.Fields(os.Getenv(envSrcs)) {
		var idx, fd int
		if _, err := fmt.Sscanf(pair, "%d:%d", &idx, &fd); err != nil {
			return err
		}
		if opts.MountSources == nil {
			opts.MountSources = map[int]*os.File{}
		}
		opts.MountSources[idx] = os.NewFile(uintptr(fd), pair)
	}
	if pre, ok := preJobs[job]; ok {
		if err := pre(os.Getenv(envBundle)); err != nil {
			return fmt.Errorf("pre-setup step: %w", err)
		}
	}
	r, err := Setup(&spec, os.Getenv(envBundle), opts)
	if err != nil {
		return fmt.Errorf("Setup: %w", err)
	}
	if err := hostile(r); err != nil {
		return fmt.Errorf("hostile step: %w", err)
	}
	if err := r.Pivot(); err != nil {
		return fmt.Errorf("Pivot: %w", err)
	}
	var rep report
	if strings.HasSuffix(job, "+console") {
		if err := mountConsole(r); err != nil {
			rep.Console = err.Error()
		}
	}
	if strings.HasSuffix(job, "+exec") {
		// The container's own busybox, from its root, sees its /dev.
		out, err := exec.Command("/bin/sh", "-c", "ls /dev/null /dev/pts/ptmx && cat /proc/self/cgroup | wc -l").CombinedOutput()
		rep.Exec = string(out)
		if err != nil {
			rep.Exec += err.Error()
		}
	}
	rep.Mounts, err = readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	rep.Probes = map[string]probe{}
	for _, p := range strings.Fields(os.Getenv(envProbe)) {
		rep.Probes[p] = probePath(p)
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// mountConsole opens a pty pair in the container's devpts and mounts its
// terminal end on /dev/console.
func mountConsole(r *Root) error {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return err
	}
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, ptmx.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		return errno
	}
	pty := os.NewFile(fd, "pty")
	defer pty.Close()
	return r.MountConsole(pty)
}

func readMountinfo(path string) ([]mountEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []mountEntry
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		pre, post, _ := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 3 {
			return nil, fmt.Errorf("bad mountinfo line %q", line)
		}
		out = append(out, mountEntry{Point: unescapeMountinfo(f[4]), Root: unescapeMountinfo(f[3]), Opts: f[5], Optional: strings.Join(f[6:], " "),
			FSType: g[0], SuperOpts: g[2]})
	}
	return out, nil
}

func probePath(p string) probe {
	var pr probe
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return pr
	}
	pr.Exists, pr.Mode, pr.Rdev, pr.UID, pr.GID = true, st.Mode, st.Rdev, st.Uid, st.Gid
	pr.IsSymlink = st.Mode&unix.S_IFMT == unix.S_IFLNK
	if pr.IsSymlink {
		pr.LinkTarget, _ = os.Readlink(p)
		return pr
	}
	var sfs unix.Statfs_t
	if unix.Statfs(p, &sfs) == nil {
		pr.FSMagic = sfs.Type
	}
	pr.IsDir = st.Mode&unix.S_IFMT == unix.S_IFDIR
	if pr.IsDir {
		f, err := os.CreateTemp(p, "probe")
		if err == nil {
			f.Close()
			os.Remove(f.Name())
		}
		pr.CreateErr = errString(err)
		return pr
	}
	// Only files and the null device are opened: opening a FIFO or reading
	// some devices would block.
	if st.Mode&unix.S_IFMT != unix.S_IFREG && (st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3)) {
		return pr
	}
	f, err := os.Open(p)
	if err == nil {
		b, rerr := io.ReadAll(io.LimitReader(f, 64))
		pr.Read, pr.ReadErr = string(b), errString(rerr)
		f.Close()
	} else {
		pr.ReadErr = err.Error()
	}
	// Open for write without truncating or writing: the open itself
	// reports EROFS/EACCES.
	f, err = os.OpenFile(p, os.O_WRONLY, 0)
	if err == nil {
		f.Close()
	}
	pr.WriteErr = errString(err)
	return pr
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// childResult is the outcome of one child run.
type childResult struct {
	rep    report
	stderr string
	err    error
}

// childEnv says how to start a child.
type childEnv struct {
	opts     Options
	userns   bool // a user namespace mapping 0-65535 to itself
	idmapper bool // give the child a UserNSMaker
	// noPidNS keeps the child in the test's pid namespace: the test's
	// UserNSMaker forks and writes /proc/<pid>/uid_map through the host's
	// /proc, which names the host's pids.
	noPidNS  bool
	noNetNS  bool
	cgroupNS bool
	sources  map[int]*os.File // passed to the child as Options.MountSources
}

// runInChild runs job on spec in a child in new namespaces.
func runInChild(t *testing.T, job string, spec *specs.Spec, bundle string, probes []string) childResult {
	return runInChildEnv(t, job, spec, bundle, probes, childEnv{})
}

func runInChildEnv(t *testing.T, job string, spec *specs.Spec, bundle string, probes []string, env childEnv) childResult {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(bundle, "config.json")
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+job, envSpec+"="+specPath, envBundle+"="+bundle,
		envProbe+"="+strings.Join(probes, "\n"))
	opts, err := json.Marshal(env.opts)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(cmd.Env, envOpts+"="+string(opts))
	if env.idmapper {
		cmd.Env = append(cmd.Env, envMaps+"=1")
	}
	var srcs []string
	for idx, f := range env.sources {
		srcs = append(srcs, fmt.Sprintf("%d:%d", idx, 3+len(cmd.ExtraFiles)))
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	cmd.Env = append(cmd.Env, envSrcs+"="+strings.Join(srcs, " "))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWUTS,
	}
	if env.noPidNS {
		cmd.SysProcAttr.Cloneflags &^= unix.CLONE_NEWPID
	}
	if env.cgroupNS {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWCGROUP
	}
	if env.noNetNS {
		cmd.SysProcAttr.Cloneflags &^= unix.CLONE_NEWNET
	}
	if env.userns {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res := childResult{err: cmd.Run(), stderr: stderr.String()}
	if res.err == nil {
		if err := json.Unmarshal([]byte(stdout.String()), &res.rep); err != nil {
			t.Fatalf("child report: %v\n%s", err, stdout.String())
		}
	}
	return res
}
