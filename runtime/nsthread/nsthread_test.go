package nsthread

import (
	"os"
	"os/exec"
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
