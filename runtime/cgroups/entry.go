package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Entering a cgroup without the attach lock.
//
// A write of a pid to cgroup.procs (Apply) takes the kernel's
// cgroup_threadgroup_rwsem for writing. When no writer has taken it for an
// RCU grace period, it is in its reader-fast mode and the writer first
// waits a full grace period (rcu_sync_enter: synchronize_rcu), holding
// cgroup_mutex all the while, so that every mkdir and rmdir of a cgroup on
// the host waits too: 4-24 ms per write on this project's VMs, measured
// against 0.03 ms for the writes below, and with perf's sched_switch
// events the largest wait of a container start (53 of 100 `estiba-runtime
// run`s waited there, 10 ms each, and 44 others on the mutex behind it).
// A process can join a cgroup without that lock in two ways:
//
//   - cgroup2: born there. clone3 with CLONE_INTO_CGROUP and the cgroup's
//     directory fd (Entry.Unified) takes the rwsem only as a reader, as
//     every fork does;
//   - cgroup v1: a thread moves itself. "0" written to a hierarchy's tasks
//     file moves the calling thread alone, and the kernel skips the rwsem
//     for it (cgroup_procs_write_start: a single thread that is current
//     cannot exit or exec under the write). For a single-threaded process,
//     such as the init stub, that is the whole process. The files are
//     opened here, by the runtime (Entry.Tasks): the v1 permission check
//     uses the opener's credentials, so a process that has already become
//     another user (a user namespace's root) may still write through them.
//
// cgroup2 has no such self-move for a process: its cgroup.threads moves a
// thread only within a threaded subtree.

// Hierarchies selects a container's cgroups by kind, for ApplyOnly.
type Hierarchies uint8

const (
	// V1 is every cgroup v1 hierarchy.
	V1 Hierarchies = 1 << iota
	// Unified is the cgroup2 hierarchy (a v2 host's only one, or a hybrid
	// host's unified mount).
	Unified
	// All is every hierarchy: ApplyOnly(pid, All) is Apply(pid).
	All = V1 | Unified
)

// Entry holds what a new process needs to join a container's cgroups
// without the attach lock (see above). Close it once the process has.
type Entry struct {
	// Unified is the cgroup2 directory, for clone3's CLONE_INTO_CGROUP
	// (SysProcAttr.UseCgroupFD); nil on a v1-only host.
	Unified *os.File
	// Tasks are the v1 hierarchies' tasks files, open for writing: a
	// single-threaded process that writes "0" to each is in every v1
	// cgroup of the container.
	Tasks []*os.File
}

// Close closes the entry's files; a second Close does nothing.
func (e *Entry) Close() {
	if e == nil {
		return
	}
	if e.Unified != nil {
		e.Unified.Close()
		e.Unified = nil
	}
	for _, f := range e.Tasks {
		f.Close()
	}
	e.Tasks = nil
}

// OpenEntry creates the container's cgroups in the hierarchies h and opens
// their Entry.
func (m *manager) OpenEntry(h Hierarchies) (e *Entry, err error) {
	if err := m.createOnly(h); err != nil {
		return nil, err
	}
	e = &Entry{}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if m.v2 != "" && h&Unified != 0 {
		if e.Unified, err = os.OpenFile(m.v2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return nil, fmt.Errorf("open cgroup: %w", err)
		}
	}
	for _, d := range m.v1dirs {
		if h&V1 == 0 {
			break
		}
		p := filepath.Join(d, "tasks")
		fd, err := openRaw(p, unix.O_WRONLY)
		if err != nil {
			return nil, fmt.Errorf("open cgroup: %w", err)
		}
		e.Tasks = append(e.Tasks, os.NewFile(uintptr(fd), p))
	}
	return e, nil
}

// ApplyOnly is Apply for the hierarchies in h: the others the process
// joined through an Entry.
func (m *manager) ApplyOnly(pid int, h Hierarchies) error {
	if err := m.create(); err != nil {
		return err
	}
	if pid <= 0 {
		return nil
	}
	var dirs []string
	if h&V1 != 0 {
		dirs = m.v1dirs
	}
	if h&Unified != 0 && m.v2 != "" {
		dirs = append(dirs[:len(dirs):len(dirs)], m.v2)
	}
	s := strconv.Itoa(pid)
	for _, d := range dirs {
		if err := writeFile(d, "cgroup.procs", s); err != nil {
			return fmt.Errorf("add pid %d to cgroup: %w", pid, err)
		}
	}
	return nil
}
