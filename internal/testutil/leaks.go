package testutil

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"testing"
)

// Mounts returns the mount points currently visible in this mount namespace.
func Mounts(t testing.TB) map[string]bool {
	t.Helper()
	// Tests unshare mount namespaces on locked threads. When such a thread
	// is the main thread, Go parks it instead of killing it, and
	// /proc/self (the thread group leader) then shows the test's private
	// namespace. Read this thread's view: a thread running test code is
	// never one of those.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatalf("read mountinfo: %v", err)
	}
	defer f.Close()
	m := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			m[fields[4]] = true
		}
	}
	return m
}

// CheckNoNewMounts registers a cleanup that fails t if, when the test ends,
// a mount point exists that did not exist when CheckNoNewMounts was called.
// Cleanup is correctness: a leaked mount is a failed test.
func CheckNoNewMounts(t testing.TB) {
	t.Helper()
	before := Mounts(t)
	t.Cleanup(func() {
		for m := range Mounts(t) {
			if !before[m] {
				t.Errorf("mount leaked: %s", m)
			}
		}
	})
}
