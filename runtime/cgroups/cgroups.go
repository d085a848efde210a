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
	"fmt"
	"path/filepath"

	"github.com/estiba/estiba/internal/openat"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotImplemented is returned by parts not built yet.
var ErrNotImplemented = errors.New("cgroups: not implemented")

// DefaultRoot is where cgroup filesystems are mounted on Linux hosts.
const DefaultRoot = "/sys/fs/cgroup"

// Config names a container's cgroup.
type Config struct {
	// Path is the OCI linux.cgroupsPath: absolute paths are relative to the
	// cgroup root (of each v1 hierarchy, or the v2 mount); relative paths are
	// relative to the runtime's own cgroup; empty means "/" + ID.
	Path string
	// ID is the container ID, used when Path is empty.
	ID string
	// Root is the cgroup filesystem root, normally /sys/fs/cgroup (the
	// default when empty). Only cgroup mounts at or below it are used.
	Root string
	// Warn receives warnings about settings the kernel refused but that are
	// deprecated and safe to skip (kernel memory limits). Nil writes them to
	// stderr.
	Warn func(msg string)
}

// Manager controls one container's cgroup(s).
type Manager interface {
	// Apply creates the cgroup(s) and moves pid into them. pid <= 0 only
	// creates them.
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
	// OpenEntry creates the cgroup(s) of the hierarchies h and opens what
	// lets a new process join them without the kernel's attach lock
	// (entry.go). The caller closes it.
	OpenEntry(h Hierarchies) (*Entry, error)
	// ApplyOnly is Apply for some hierarchies: those the process did not
	// join through an Entry.
	ApplyOnly(pid int, h Hierarchies) error
	// Mode is the host's cgroup layout.
	Mode() Mode
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

// MemoryStats are bytes, except OOMKills. SwapUsage is swap alone;
// SwapLimit is the kernel's: memory+swap on v1, swap alone on v2. A limit of
// 0 means none ("max"); on v1 no limit reads as a huge number.
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

// New returns the Manager for cfg on this host's cgroup layout, read from
// /proc/self/mountinfo and /proc/self/cgroup.
func New(cfg Config) (Manager, error) {
	m, err := newHost(cfg)
	if err != nil {
		return nil, err // not a nil *manager in a non-nil Manager
	}
	return m, nil
}

// Host is this host's cgroup layout under one root: its cgroup mounts and
// the reader's own cgroups, read once for a long-lived caller (the engine's
// spawner) that makes a manager per container operation. New reads them
// again each time (two /proc files parsed: ~0.2 ms a start there). The
// layout is only read after ReadHost: a Host is safe to share.
type Host struct {
	root string
	l    *layout
}

// ReadHost reads the layout under root ("" is DefaultRoot).
func ReadHost(root string) (*Host, error) {
	mi, err := openat.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	self, err := openat.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return hostFrom(root, mi, self)
}

// hostFrom is ReadHost with the two /proc files given.
func hostFrom(root string, mountinfo, selfCgroup []byte) (*Host, error) {
	if root == "" {
		root = DefaultRoot
	}
	l, err := parseLayout(root, mountinfo, selfCgroup)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return &Host{root: root, l: l}, nil
}

// New is cgroups.New on h's layout; cfg.Root must be h's root or "".
func (h *Host) New(cfg Config) (Manager, error) {
	m, err := h.manager(cfg)
	if err != nil {
		return nil, err // not a nil *manager in a non-nil Manager
	}
	return m, nil
}

func (h *Host) manager(cfg Config) (*manager, error) {
	if cfg.Root == "" {
		cfg.Root = h.root
	}
	if filepath.Clean(cfg.Root) != filepath.Clean(h.root) {
		return nil, fmt.Errorf("cgroups: root %s, but the host layout was read under %s", cfg.Root, h.root)
	}
	inner, err := innerPath(cfg)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return newManager(cfg, h.l, inner), nil
}

// newHost is New's manager, read from this host.
func newHost(cfg Config) (*manager, error) {
	h, err := ReadHost(cfg.Root)
	if err != nil {
		return nil, err
	}
	return h.manager(cfg)
}

// newFromHost is New with the two /proc files given, so unit tests can
// describe a fake host whose mounts point into a temp dir.
func newFromHost(cfg Config, mountinfo, selfCgroup []byte) (*manager, error) {
	h, err := hostFrom(cfg.Root, mountinfo, selfCgroup)
	if err != nil {
		return nil, err
	}
	return h.manager(cfg)
}
