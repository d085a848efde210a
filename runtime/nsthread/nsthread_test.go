package nsthread

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"golang.org/x/sys/unix"
)

var testTypes = []string{"mnt", "uts", "net", "ipc"}

func TestRefusedTypes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		types int
		want  string
	}{
		{"user", unix.CLONE_NEWUSER | unix.CLONE_NEWNS, "user namespace"},
		{"pid", unix.CLONE_NEWPID, "pid namespace"},
		{"time", unix.CLONE_NEWTIME, "time namespace"},
		{"not a type", unix.CLONE_VM, "not namespace types"},
		{"none", 0, "no namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			err := Run(os.Getpid(), tc.types, func() error { called = true; return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run(%#x) = %v, want an error about %q", tc.types, err, tc.want)
			}
			if called {
				t.Error("f ran")
			}
		})
	}
}

func TestRunGoneProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	err := Run(cmd.Process.Pid, unix.CLONE_NEWUTS, func() error { t.Error("f ran"); return nil })
	if err == nil {
		t.Fatal("Run on a reaped process succeeded")
	}
}

// TestRun joins a child's namespaces, by pidfd and by /proc (the fallback of
// kernels before 5.8), and checks that only the thread that ran f moved.
func TestRun(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	joiners := map[string]func(pid int, f func() error) error{
		"pidfd": func(pid int, f func() error) error {
			return Run(pid, unix.CLONE_NEWNS|unix.CLONE_NEWUTS|unix.CLONE_NEWNET|unix.CLONE_NEWIPC, f)
		},
		"proc": func(pid int, f func() error) error {
			types := unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC
			return run(func() error { return setnsProc(pid, -1, types) }, f)
		},
	}
	for name, join := range joiners {
		t.Run(name, func(t *testing.T) { testJoin(t, join) })
	}
}

func testJoin(t *testing.T, join func(pid int, f func() error) error) {
	child := startChild(t)
	hostname, _ := os.Hostname()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := nsLinks(t, "/proc/thread-self")

	var inThread map[string]string
	var tid int
	err := join(child, func() error {
		tid = unix.Gettid()
		if err := unix.Sethostname([]byte("nsthread-test")); err != nil {
			return err
		}
		inThread = nsLinks(t, "/proc/thread-self")
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := nsLinks(t, "/proc/"+strconv.Itoa(child))
	for _, ns := range testTypes {
		if inThread[ns] != want[ns] {
			t.Errorf("%s in f: %s, want the child's %s", ns, inThread[ns], want[ns])
		}
		if want[ns] == before[ns] {
			t.Errorf("%s: the child shares ours (%s): the test proves nothing", ns, want[ns])
		}
	}
	if after := nsLinks(t, "/proc/thread-self"); !equal(after, before) {
		t.Errorf("caller's thread moved: %v, was %v", after, before)
	}
	other := make(chan map[string]string)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		other <- nsLinks(t, "/proc/thread-self")
	}()
	if o := <-other; !equal(o, before) {
		t.Errorf("another goroutine's thread is in %v, want %v", o, before)
	}
	if h, _ := os.Hostname(); h != hostname {
		t.Errorf("our hostname changed to %q", h)
	}
	if tid == unix.Getpid() {
		t.Error("f ran on the main thread")
	}
	// The goroutine sends f's result before it exits: the thread may
	// take a moment to go.
	task := "/proc/self/task/" + strconv.Itoa(tid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(task); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d that ran f still exists", tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startChild starts `sleep 60` in new mount, uts, net and ipc namespaces,
// killed and reaped when the test ends.
func startChild(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC,
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

func nsLinks(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, ns := range testTypes {
		l, err := os.Readlink(dir + "/ns/" + ns)
		if err != nil {
			t.Errorf("readlink: %v", err)
		}
		m[ns] = l
	}
	return m
}

func equal(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

// TestSetFSOwner: a tmpfs made by a process in a user namespace mapping
// 0-65535 to 100000-165535 refuses inodes of host root; after SetFSOwner,
// the thread creates them as the container's root and can still chown and
// mknod.
func TestSetFSOwner(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	dir := t.TempDir()
	// The shell in the namespace, host uid 100000, must reach dir.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "-c", "mount -t tmpfs tmpfs "+dir+" && echo ready && read x")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		Credential:  &syscall.Credential{Uid: 0, Gid: 0},
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	}
	testutil.StartReady(t, cmd)
	var st unix.Stat_t
	was, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	err := Run(cmd.Process.Pid, unix.CLONE_NEWNS, func() error {
		if err := unix.Mkdir(dir+"/d", 0o755); !errors.Is(err, unix.EOVERFLOW) {
			return fmt.Errorf("mkdir as host root: %v, want EOVERFLOW", err)
		}
		done, err := SetFSOwner(100000, 100000)
		if err != nil {
			return err
		}
		defer done()
		if err := unix.Mkdir(dir+"/d", 0o755); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		if err := unix.Mknod(dir+"/null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		if err := unix.Lchown(dir+"/d", 100005, 100006); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		return unix.Lstat(dir+"/d", &st)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Uid != 100005 || st.Gid != 100006 {
		t.Errorf("owner %d:%d, want 100005:100006", st.Uid, st.Gid)
	}
	// The kernel made the process non-dumpable at the fsuid change; done
	// gave it back.
	if now, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || now != was {
		t.Errorf("dumpable %d (%v) after, %d before", now, err, was)
	}
}
