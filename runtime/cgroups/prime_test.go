package cgroups

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/estiba/estiba/internal/openat"
	"github.com/estiba/estiba/internal/testutil"
	"golang.org/x/sys/unix"
)

// The priming write goes to the process's own cgroup and moves nothing; a
// directory that does not hold the process is never written.
func TestPrimeOnce(t *testing.T) {
	testutil.RequiresRoot(t)
	before, err := openat.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !primeOnce(DefaultRoot, unix.Getpid()) {
		t.Fatal("no own cgroup found to write to")
	}
	after, err := openat.ReadFile("/proc/self/cgroup")
	if err != nil || string(after) != string(before) {
		t.Fatalf("cgroups changed:\n%s\nto\n%s (%v)", before, after, err)
	}
	// A new, empty cgroup: pid is not in it, so nothing is written.
	l, err := parseLayout(DefaultRoot, mustRead(t, "/proc/self/mountinfo"), before)
	if err != nil {
		t.Fatal(err)
	}
	var mount string
	if len(l.v1) > 0 {
		mount = l.v1[0].mount
	} else {
		mount = l.unified.mount
	}
	dir := filepath.Join(mount, "estiba-primetest-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if writeOwn(dir, unix.Getpid()) {
		t.Fatal("wrote to a cgroup that does not hold the process")
	}
	if procs := mustRead(t, filepath.Join(dir, "cgroup.procs")); len(procs) != 0 {
		t.Fatalf("the process moved: %q", procs)
	}
	if writeOwn(t.TempDir(), unix.Getpid()) {
		t.Fatal("wrote to a directory that is not a cgroup")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := openat.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
