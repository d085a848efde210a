// Package cgroups places containers in cgroups and applies their resource
// limits on cgroup v1, v2 and hybrid hosts (v1 controllers plus a cgroup2
// mount at /sys/fs/cgroup/unified, as on our CI machines).
//
// A Manager is cheap to rebuild: every runtime command (create, pause, update,
// delete...) runs in its own process, so New must derive the same paths from
// the same Config each time rather than rely on state kept in memory.
package cgroups

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotImplemented is returned by parts not built yet.
var ErrNotImplemented = errors.New("cgroups: not implemented")

// Config names a container's cgroup.
type Config struct {
	// Path is the OCI linux.cgroupsPath: absolute paths are relative to the
	// cgroup root (of each v1 hierarchy, or the v2 mount); relative paths are
	// relative to the runtime's own cgroup; empty means a path derived from ID.
	Path string
	// ID is the container ID, used when Path is empty.
	ID string
	// Root is the cgroup filesystem root, normally /sys/fs/cgroup. Tests pass
	// another; the VM lane passes its own.
	Root string
}

// Manager controls one container's cgroup(s).
type Manager interface {
	// Apply creates the cgroup(s) and moves pid into them.
	Apply(pid int) error
	// Set writes the resource limits. It may be called before or after Apply.
	Set(r *specs.LinuxResources) error
	// Freeze and Thaw implement pause and resume.
	Freeze() error
	Thaw() error
	// Pids lists every process in the container's cgroup (for ps, kill --all).
	Pids() ([]int, error)
	// Stats reads usage counters (for events --stats and the engine's stats).
	Stats() (*Stats, error)
	// Destroy kills nothing: callers kill first. It removes the cgroup(s),
	// retrying while the kernel finishes releasing exited tasks.
	Destroy() error
	// Paths maps each controller (v1) or "" (v2) to the cgroup directory.
	Paths() map[string]string
}

// Stats is a snapshot of a container's usage.
type Stats struct {
	CPU    CPUStats
	Memory MemoryStats
	Pids   PidsStats
	IO     []IOEntry
}

type CPUStats struct {
	UsageNanos, UserNanos, SystemNanos uint64
	Periods, ThrottledPeriods          uint64
	ThrottledNanos                     uint64
}

type MemoryStats struct {
	Usage, MaxUsage, Limit, Cache uint64
	SwapUsage, SwapLimit          uint64
	OOMKills                      uint64
}

type PidsStats struct{ Current, Limit uint64 }

type IOEntry struct {
	Major, Minor                             uint64
	ReadBytes, WriteBytes, ReadIOs, WriteIOs uint64
}

// New returns the Manager for cfg on this host's cgroup layout.
func New(cfg Config) (Manager, error) {
	return nil, ErrNotImplemented
}
