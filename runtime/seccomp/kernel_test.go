package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/seccomp/defaultprofile"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests install filters in a child, a re-exec of this test binary
// (TestMain dispatches on childEnv): a filter can never be removed.
const childEnv = "ESTIBA_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode == "exec386-x86" || mode == "exec386-native" {
		runtime.LockOSThread()
		err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		if err == nil {
			err = childExec386(mode == "exec386-x86")
		}
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if mode := os.Getenv(childEnv); mode != "" {
		out, err := child(mode)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var children = map[string]func() (map[string]string, error){
	"errno":  childErrno,
	"docker": childDocker,
	"kill":   childKill,
	"notify": childNotify,
	"flags":  childFlags,
}

func child(mode string) (map[string]string, error) {
	f := children[mode]
	if f == nil {
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	// The filter goes on this thread (no TSYNC): every filtered syscall
	// below must run on it.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, err
	}
	return f()
}

func install(p *specs.LinuxSeccomp) (int, error) {
	prog, err := Compile(p)
	if err != nil {
		return -1, err
	}
	return Install(prog)
}

// errName is how a child reports a syscall's result.
func errName(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	return unix.ErrnoName(e)
}

func rawErr(nr uintptr, args ...uintptr) string {
	a := make([]uintptr, 6)
	copy(a, args)
	_, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return errName(e)
}

func childErrno() (map[string]string, error) {
	_, err := install(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActErrno},
		{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EACCES))},
		// getpid ignores its arguments, but the filter sees them: it
		// checks that the high and low words are where Compile loads them.
		{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)),
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0x100000005, Op: specs.OpEqualTo}}},
		{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOENT)),
			Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0xffffffff00000000, ValueTwo: 0x8000000000000000, Op: specs.OpMaskedEqual}}},
	}})
	if err != nil {
		return nil, err
	}
	dir := []byte("/nonexistent-estiba-seccomp-test\x00")
	return map[string]string{
		"getppid":            rawErr(unix.SYS_GETPPID),
		"mkdirat":            rawErr(unix.SYS_MKDIRAT, atFDCWD, uintptr(unsafe.Pointer(&dir[0])), 0o755),
		"getpid":             rawErr(unix.SYS_GETPID),
		"getpid 1:hi|5":      rawErr(unix.SYS_GETPID, 0, 0x100000005),
		"getpid 1:5":         rawErr(unix.SYS_GETPID, 0, 5),
		"getpid 2:masked":    rawErr(unix.SYS_GETPID, 0, 0, 0x80000000ffffffff),
		"getpid 2:notmasked": rawErr(unix.SYS_GETPID, 0, 0, 0x40000000ffffffff),
	}, nil
}

func childDocker() (map[string]string, error) {
	p, err := defaultprofile.Docker(dockerCaps)
	if err != nil {
		return nil, err
	}
	if _, err := install(p); err != nil {
		return nil, err
	}
	target := []byte("/tmp\x00")
	return map[string]string{
		"getpid":         rawErr(unix.SYS_GETPID),
		"mount":          rawErr(unix.SYS_MOUNT, uintptr(unsafe.Pointer(&target[0])), uintptr(unsafe.Pointer(&target[0])), 0, unix.MS_BIND),
		"unshare user":   rawErr(unix.SYS_UNSHARE, unix.CLONE_NEWUSER),
		"clone3":         rawErr(unix.SYS_CLONE3, 0, 0),
		"syscall 1000":   rawErr(1000),
		"uname":          rawErr(unix.SYS_UNAME, 0), // EFAULT: allowed, bad pointer
		"open_by_handle": rawErr(unix.SYS_OPEN_BY_HANDLE_AT, 0, 0, 0),
		"socket vsock":   rawErr(unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM),
		// A bad socket type: the kernel, not the filter, says EINVAL.
		"socket inet": rawErr(unix.SYS_SOCKET, unix.AF_INET, 0xfff),
	}, nil
}

// childFlags installs filters with every flag the kernel takes from a
// profile, then checks that TSYNC filtered the other threads too.
func childFlags() (map[string]string, error) {
	res := map[string]string{}
	for _, tc := range []struct {
		name  string
		flags []specs.LinuxSeccompFlag
		rules []specs.LinuxSyscall
	}{
		{"log+spec_allow", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}, nil},
		{"notify+tsync+killable", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagWaitKillableRecv},
			[]specs.LinuxSyscall{{Names: []string{"acct"}, Action: specs.ActNotify}}},
		{"tsync", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"},
			[]specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}}},
	} {
		fd, err := install(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tc.flags, Syscalls: tc.rules})
		switch {
		case err != nil:
			res[tc.name] = err.Error()
		case fd >= 0:
			res[tc.name] = "ok, listener"
			unix.Close(fd)
		default:
			res[tc.name] = "ok"
		}
	}
	// Other threads: new goroutines locked to threads of their own.
	results := make(chan string, 4)
	for range 4 {
		go func() {
			runtime.LockOSThread()
			results <- fmt.Sprintf("%d:%s", unix.Gettid(), rawErr(unix.SYS_GETPPID))
		}()
	}
	threads := map[string]bool{}
	for range 4 {
		r := <-results
		tid, verdict, _ := strings.Cut(r, ":")
		threads[tid] = true
		if verdict != "EPERM" {
			res["other threads"] = r
		}
	}
	if res["other threads"] == "" {
		res["other threads"] = fmt.Sprintf("EPERM on %d threads", len(threads))
	}
	return res, nil
}

func childKill() (map[string]string, error) {
	if _, err := install(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActKillProcess},
	}}); err != nil {
		return nil, err
	}
	rawErr(unix.SYS_GETPPID)
	return map[string]string{"survived": "yes"}, nil
}

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif
// and struct seccomp_notif_resp.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

func childNotify() (map[string]string, error) {
	fd, err := install(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdirat"}, Action: specs.ActNotify},
	}})
	if err != nil {
		return nil, err
	}
	if fd < 0 {
		return nil, errors.New("no listener fd")
	}
	got := make(chan string, 1)
	// The supervisor runs on another thread, which has no filter.
	go func() {
		var n seccompNotif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); e != 0 {
			got <- "recv: " + errName(e)
			return
		}
		resp := seccompNotifResp{id: n.id, error: -int32(unix.EXDEV)}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 {
			got <- "send: " + errName(e)
			return
		}
		got <- fmt.Sprintf("nr %d arg2 %#o", n.nr, n.args[2])
	}()
	dir := []byte("/nonexistent-estiba-seccomp-test\x00")
	res := rawErr(unix.SYS_MKDIRAT, atFDCWD, uintptr(unsafe.Pointer(&dir[0])), 0o700)
	return map[string]string{"mkdirat": res, "supervisor": <-got}, nil
}

// runChild runs a child mode and returns its results.
func runChild(t *testing.T, mode string) (map[string]string, *exec.ExitError) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=NONE")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil, exit
	}
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]string{}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	return res, nil
}

func TestKernel(t *testing.T) {
	testutil.RequiresRoot(t)
	tests := []struct {
		mode string
		want map[string]string
	}{
		{"errno", map[string]string{"getppid": "EPERM", "mkdirat": "EACCES", "getpid": "ok",
			"getpid 1:hi|5": "EXDEV", "getpid 1:5": "ok", "getpid 2:masked": "ENOENT", "getpid 2:notmasked": "ok"}},
		{"docker", map[string]string{"getpid": "ok", "mount": "EPERM", "unshare user": "EPERM",
			"clone3": "ENOSYS", "syscall 1000": "ENOSYS", "uname": "EFAULT", "open_by_handle": "EPERM",
			"socket vsock": "EPERM", "socket inet": "EINVAL"}},
		{"flags", map[string]string{"log+spec_allow": "ok", "notify+tsync+killable": "ok, listener", "tsync": "ok",
			"other threads": "EPERM on *"}},
		{"notify", map[string]string{"mkdirat": "EXDEV", "supervisor": fmt.Sprintf("nr %d arg2 0700", unix.SYS_MKDIRAT)}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			got, exit := runChild(t, tt.mode)
			if exit != nil {
				t.Fatalf("child: %v: %s", exit, exit.Stderr)
			}
			for k, want := range tt.want {
				// A trailing "*" matches any rest.
				if prefix, ok := strings.CutSuffix(want, "*"); ok && strings.HasPrefix(got[k], prefix) {
					continue
				}
				if got[k] != want {
					t.Errorf("%s: %s, want %s", k, got[k], want)
				}
			}
		})
	}
}

func TestKernelKillProcess(t *testing.T) {
	testutil.RequiresRoot(t)
	_, exit := runChild(t, "kill")
	if exit == nil {
		t.Fatal("child survived SCMP_ACT_KILL_PROCESS")
	}
	ws := exit.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS", exit)
	}
}

// atFDCWD is AT_FDCWD (-100) as a syscall argument.
var atFDCWD = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()

func mustJSON(s string) *specs.LinuxSeccomp {
	var p specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		panic(err)
	}
	return &p
}
