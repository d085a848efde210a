package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// manager is the one Manager for all three layouts: v1 hierarchies (v1 map),
// a cgroup2 directory (v2), or both on hybrid hosts. Each resource goes to the
// v1 hierarchy of its controller when mounted, else to the cgroup2 directory
// when that controller is enabled there, else fails.
type manager struct {
	cfg    Config
	layout *layout
	// v1 maps each v1 controller ("cpu", "name=systemd") to its directory.
	v1 map[string]string
	// v1dirs are the distinct v1 directories (co-mounted controllers share one).
	v1dirs []string
	// v2 is the cgroup2 directory ("" on v1-only hosts); v2mount its mount.
	v2, v2mount string
	// inner is the cgroup path inside each hierarchy ("/<id>").
	inner string
	// created holds the Hierarchies that create made and Destroy has not
	// removed since, so Set after Apply (create's order) skips a stat and
	// mkdir per hierarchy. While the container's processes are in the
	// cgroup it cannot be removed (rmdir fails EBUSY), so the directories
	// stay.
	created atomic.Uint32
}

func newManager(cfg Config, l *layout, inner string) *manager {
	m := &manager{cfg: cfg, layout: l, v1: map[string]string{}, inner: inner}
	for _, h := range l.v1 {
		d := dirIn(h, inner)
		m.v1dirs = append(m.v1dirs, d)
		for _, c := range h.controllers {
			m.v1[c] = d
		}
	}
	if l.unified != nil {
		m.v2, m.v2mount = dirIn(*l.unified, inner), l.unified.mount
	}
	return m
}

func (m *manager) Mode() Mode { return m.layout.mode }

func (m *manager) Paths() map[string]string {
	p := make(map[string]string, len(m.v1)+1)
	for c, d := range m.v1 {
		p[c] = d
	}
	if m.v2 != "" {
		p[""] = m.v2
	}
	return p
}

func (m *manager) warn(format string, args ...any) {
	msg := fmt.Sprintf("cgroups: "+format, args...)
	if m.cfg.Warn != nil {
		m.cfg.Warn(msg)
		return
	}
	fmt.Fprintln(os.Stderr, msg)
}

// create makes every directory of the container's cgroup. It is idempotent:
// Set and Apply both call it, in whichever order the runtime uses.
//
// A parent may be removed under us (the engine's at daemon stop,
// RemoveEmpty, or any other cgroup manager's); if that happens between our
// mkdir of the parent and of the child, the child's mkdir fails with
// ENOENT, and a read of the parent's files (cpuset.cpus,
// cgroup.subtree_control) opened just before its rmdir fails with ENODEV;
// either way we simply go again. (Seen under parallel creates and deletes
// when each Destroy removed a shared parent: 4 goroutines × 250 creates, a
// few such failures.)
func (m *manager) create() error { return m.createOnly(All) }

// createOnly creates the cgroups of the hierarchies in h that are not made
// yet (OpenEntry makes a start's in two parts).
func (m *manager) createOnly(h Hierarchies) error {
	h &^= Hierarchies(m.created.Load())
	if h == 0 {
		return nil
	}
	var err error
	for try := 0; try < 8; try++ {
		if err = m.createOnce(h); !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENODEV) {
			if err == nil {
				m.created.Or(uint32(h))
			}
			return err
		}
	}
	return err
}

// mountOf returns the mount point of controller's v1 hierarchy.
func (m *manager) mountOf(controller string) string {
	for _, h := range m.layout.v1 {
		for _, c := range h.controllers {
			if c == controller {
				return h.mount
			}
		}
	}
	return "/"
}

func (m *manager) createOnce(h Hierarchies) error {
	for c, d := range m.v1 {
		if h&V1 == 0 {
			break
		}
		if c == "cpuset" {
			if err := mkdirCpuset(m.mountOf(c), d); err != nil {
				return err
			}
			continue
		}
		if err := mkdirWithParents(d); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	if m.v2 != "" && h&Unified != 0 {
		if err := mkdirV2(m.v2mount, m.v2); err != nil {
			return err
		}
	}
	return nil
}

// mkdirWithParents is os.MkdirAll for a directory whose parents usually
// exist: one mkdir, where MkdirAll stats the directory and its parent
// first (two lookups more in each of a start's v1 hierarchies).
func mkdirWithParents(d string) error {
	err := os.Mkdir(d, 0o755)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrExist) {
		// Parents to make, or a name taken (by a directory, or by a
		// file, which MkdirAll reports).
		return os.MkdirAll(d, 0o755)
	}
	return err
}

// mkdirCpuset creates a v1 cpuset directory and its parents below mount. A
// new v1 cpuset starts with empty cpuset.cpus and cpuset.mems, and the
// kernel refuses to attach tasks to it (ENOSPC) until both are set; so each
// level copies its parent's values, top-down. Every level is checked, not
// only the ones this call creates: a parent another runtime has just made
// may not have its values yet, and copying its emptiness would fail the
// attach.
//
// A parent this call creates also gets cgroup.clone_children: the kernel
// then gives each new child its parent's cpus and mems itself, and a
// container's cgroup under it needs no writes. A write to cpuset.cpus
// makes the kernel rebuild the scheduler's domain accounting under global
// locks (~0.1 ms each here, and every concurrent start waits on them).
func mkdirCpuset(mount, dir string) error {
	return mkdirCpusetLevel(mount, dir, true)
}

func mkdirCpusetLevel(mount, dir string, leaf bool) error {
	if dir == mount || len(dir) <= len(mount) {
		return nil // the hierarchy root always has both values
	}
	parent := filepath.Dir(dir)
	if err := mkdirCpusetLevel(mount, parent, false); err != nil {
		return err
	}
	created := true
	if err := os.Mkdir(dir, 0o755); errors.Is(err, os.ErrExist) {
		created = false
	} else if err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(dir, f)
		if err != nil {
			return err
		}
		if cur != "" {
			continue
		}
		v, err := readFile(parent, f)
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, v); err != nil {
			return fmt.Errorf("inherit parent cpuset: %w", err)
		}
	}
	if created && !leaf {
		if err := writeFile(dir, "cgroup.clone_children", "1"); err != nil {
			return fmt.Errorf("cpuset clone_children: %w", err)
		}
	}
	return nil
}

// mkdirV2 creates a cgroup2 directory and its missing parents, enabling in
// each ancestor's cgroup.subtree_control every controller that ancestor has:
// a v2 cgroup only gets the knobs its parent delegates to it.
func mkdirV2(mount, dir string) error {
	rel, err := filepath.Rel(mount, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is outside its mount %s", dir, mount)
	}
	cur := mount
	for _, elem := range strings.Split(rel, "/") {
		if err := enableControllers(cur); err != nil {
			return err
		}
		cur = filepath.Join(cur, elem)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	return nil
}

// enableControllers delegates dir's controllers to its children. The kernel
// refuses some (a cgroup holding processes cannot delegate domain
// controllers); those are skipped here, and Set reports the missing knob if
// a limit needs one.
func enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	on, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	enabled := map[string]bool{}
	for _, c := range strings.Fields(on) {
		enabled[c] = true
	}
	var want []string
	for _, c := range strings.Fields(avail) {
		if !enabled[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(want, " ")) == nil {
		return nil
	}
	for _, c := range want {
		_ = writeFile(dir, "cgroup.subtree_control", c) // best effort, see above
	}
	return nil
}

func (m *manager) Apply(pid int) error { return m.ApplyOnly(pid, All) }

// procsDir is the directory whose cgroup.procs lists the container's
// processes: any hierarchy holds them all, since Apply joins every one.
func (m *manager) procsDir() string {
	if m.layout.mode == ModeV2 {
		return m.v2
	}
	for _, c := range []string{"pids", "freezer", "memory", "cpu"} {
		if d, ok := m.v1[c]; ok {
			return d
		}
	}
	if len(m.v1dirs) > 0 {
		return m.v1dirs[0]
	}
	return m.v2
}

func (m *manager) Pids() ([]int, error) {
	var pids []int
	err := walkCgroups(m.procsDir(), func(dir string) error {
		s, err := readFile(dir, "cgroup.procs")
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(s) {
			p, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("parse %s/cgroup.procs: %w", dir, err)
			}
			pids = append(pids, p)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	sort.Ints(pids)
	return pids, err
}

// walkCgroups calls fn on dir and each cgroup below it, parents first.
func walkCgroups(dir string, fn func(string) error) error {
	if err := fn(dir); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list cgroup: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := walkCgroups(filepath.Join(dir, e.Name()), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// destroyTimeout bounds how long Destroy waits for exiting tasks to leave.
const destroyTimeout = 5 * time.Second

func (m *manager) Destroy() error {
	m.created.Store(0)
	deadline := time.Now().Add(destroyTimeout)
	// Killed tasks in a frozen v1 cgroup cannot exit until thawed, and the
	// cgroup cannot be removed before they do (v2 lets fatal signals through).
	if d, ok := m.v1["freezer"]; ok {
		if s, err := readFile(d, "freezer.state"); err == nil && s != "THAWED" {
			_ = writeFile(d, "freezer.state", "THAWED")
		}
	}
	var errs []error
	for _, d := range m.allDirs() {
		if err := removeCgroup(d, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveEmpty removes the cgroup at path (absolute, as Config.Path) in
// every hierarchy where it has no children and no processes; elsewhere it
// stays, and that is no error. It never waits: rmdir is tried once.
func RemoveEmpty(root, path string) error {
	m, err := newHost(Config{Path: path, Root: root})
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range m.allDirs() {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTEMPTY) && !isBusy(err) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func (m *manager) allDirs() []string {
	dirs := append([]string(nil), m.v1dirs...)
	if m.v2 != "" {
		dirs = append(dirs, m.v2)
	}
	return dirs
}

// removeCgroup removes dir and the cgroups below it, leaves first (rmdir
// of a cgroup with children fails). A missing dir is already removed. rmdir
// fails with EBUSY while exited tasks are still being released, so it is
// retried until deadline.
func removeCgroup(dir string, deadline time.Time) error {
	// A container's cgroup rarely has children: try rmdir before listing
	// the directory (which kernfs fills with every control file), in
	// each hierarchy on every delete.
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !isBusy(err) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove cgroup: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	delay := time.Millisecond
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 100*time.Millisecond)
	}
}
