package cgroups

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/estiba/estiba/internal/openat"
	"golang.org/x/sys/unix"
)

// Priming the cgroup attach lock.
//
// Every write of a pid to a cgroup.procs file takes the kernel's
// cgroup_threadgroup_rwsem, a per-cpu rwsem, for writing. When no writer
// has taken it for an RCU grace period, the rwsem is in its reader-fast
// mode, and the first writer waits a full grace period to switch it
// (rcu_sync_enter: synchronize_rcu), holding cgroup_mutex. Writers that
// follow within a grace period of the last one pass at once. A no-op
// write, this process into its own cgroup, when an exec begins starts that
// switch early, so that it overlaps the exec's other work instead of its
// placement. A container's init needs no such write (Entry); a primer
// there would only make the init's cgroup mkdirs wait on the mutex.

var priming atomic.Bool

// PrimeAttach starts, in the background, a no-op write of this process
// into its own cgroup (see above), unless one is under way. It changes no
// cgroup membership: the cgroup it writes to is checked to hold the
// process first. Errors are ignored: it only saves time.
func PrimeAttach() {
	if !priming.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer priming.Store(false)
		primeOnce(DefaultRoot, unix.Getpid())
	}()
}

// primeOnce writes pid into its own cgroup of the first hierarchy found
// under root (a v1 one, or cgroup2), and reports whether it did.
func primeOnce(root string, pid int) bool {
	self, err := openat.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(self)) {
		parts := strings.SplitN(strings.TrimSuffix(line, "\n"), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dirs []string
		if ctl := parts[1]; ctl != "" {
			dirs = []string{filepath.Join(root, strings.TrimPrefix(ctl, "name="), parts[2])}
		} else {
			dirs = []string{filepath.Join(root, parts[2]), filepath.Join(root, "unified", parts[2])}
		}
		for _, d := range dirs {
			if writeOwn(d, pid) {
				return true
			}
		}
	}
	return false
}

// writeOwn writes pid to dir's cgroup.procs if pid is listed there: a
// wrong guess of the mount (another layout, another cgroup namespace)
// must never move the process.
func writeOwn(dir string, pid int) bool {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil || (st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC) {
		return false
	}
	if Holds(fd, pid) != nil {
		return false
	}
	w, err := unix.Openat(fd, "cgroup.procs", unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer unix.Close(w)
	_, err = unix.Write(w, []byte(strconv.Itoa(pid)))
	return err == nil
}

// Holds returns nil if the cgroup directory dir (a descriptor) lists pid
// in its cgroup.procs.
func Holds(dir int, pid int) error {
	b, err := openat.ReadFileAt(dir, "cgroup.procs")
	if err != nil {
		return err
	}
	want := strconv.Itoa(pid)
	for l := range strings.Lines(string(b)) {
		if strings.TrimSuffix(l, "\n") == want {
			return nil
		}
	}
	return fmt.Errorf("process %d is not in it", pid)
}
