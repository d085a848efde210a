package rootfs

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	"golang.org/x/sys/unix"
)

// A bind of a host cgroup directory is taken only if it holds the process
// whose cgroups were read: a path read in one cgroup namespace and looked
// up in a /sys/fs/cgroup mounted for another must not give the container
// a view of someone else's cgroup (or of the hierarchy's root).
func TestHostCgroupBindHoldsProcess(t *testing.T) {
	testutil.RequiresRoot(t)
	hs := selfHierarchies(t)
	var own hierarchy
	for _, h := range hs {
		if h.controllers == "pids" || (len(hs) == 1 && h.controllers == "") {
			own = h
		}
	}
	if own.path == "" {
		t.Skip("no pids hierarchy")
	}
	r := &Root{cgroups: hs}
	base := "/sys/fs/cgroup"
	if len(hs) != 1 {
		base = filepath.Join(base, own.dir())
	}
	// A new, empty cgroup: the "wrong" directory.
	rel := "estiba-bindtest-" + strconv.Itoa(os.Getpid())
	if err := os.Mkdir(filepath.Join(base, rel), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(base, rel))
	tests := []struct {
		name string
		path string
		pid  int
		ok   bool
	}{
		{"own cgroup", own.path, 0, true},
		{"own cgroup, pid given", own.path, unix.Getpid(), true},
		{"a cgroup without the process", "/" + rel, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.opts.CgroupPID = tt.pid
			fd, err := r.hostCgroupBind(hierarchy{controllers: own.controllers, path: tt.path}, 0)
			if fd >= 0 {
				unix.Close(fd)
			}
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok %v", err, tt.ok)
			}
		})
	}
}
