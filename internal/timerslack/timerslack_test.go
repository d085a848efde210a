package timerslack

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func slack(t *testing.T) int {
	t.Helper()
	v, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestWidenAndRestore runs in a child built without cgo (AllThreadsSyscall
// needs that): every thread gets Wide, a process started after inherits
// it, and Restore gives the calling thread back the old value.
func TestWidenAndRestore(t *testing.T) {
	if os.Getenv("TIMERSLACK_CHILD") == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^TestWidenAndRestore$", "-test.v")
		cmd.Env = append(os.Environ(), "TIMERSLACK_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") && !strings.Contains(string(out), "--- SKIP") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	if !cgoDisabled() {
		t.Skip("AllThreadsSyscall needs a binary without cgo")
	}
	before := slack(t)
	prev := Widen()
	if int(prev) != before {
		t.Fatalf("Widen returned %d, slack was %d", prev, before)
	}
	// Another thread: a goroutine locked to a new OS thread.
	got := make(chan int)
	go func() {
		runtime.LockOSThread()
		got <- slack(t)
	}()
	if v := <-got; v != Wide {
		t.Fatalf("new thread's slack %d, want %d", v, Wide)
	}
	out, err := exec.Command("cat", "/proc/self/timerslack_ns").Output()
	if err == nil && strings.TrimSpace(string(out)) != "500000" {
		t.Fatalf("child process slack %q, want 500000", out)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := Restore(prev); err != nil {
		t.Fatal(err)
	}
	if v := slack(t); v != before {
		t.Fatalf("restored slack %d, want %d", v, before)
	}
}
