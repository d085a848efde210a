package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/runtime/cgroups"
)

// rootlessCgroups is the cgroup manager of a rootless runtime (runc's
// --rootless): an unprivileged user may not have been delegated a cgroup
// subtree (on this hybrid host and most v1 hosts, never). As runc does, a
// cgroup it may not create or write is then skipped, unless the spec asks
// for limits, which would silently not hold: that is an error.
type rootlessCgroups struct {
	cgroups.Manager
	// off: Apply was refused, the container runs in the caller's cgroup.
	off bool
}

func (c *rootlessCgroups) Apply(pid int) error { return c.ApplyOnly(pid, cgroups.All) }

func (c *rootlessCgroups) ApplyOnly(pid int, h cgroups.Hierarchies) error {
	err := c.Manager.ApplyOnly(pid, h)
	if denied(err) {
		c.off = true
		c.Manager.Destroy()
		return nil
	}
	return err
}

func (c *rootlessCgroups) Set(r *specs.LinuxResources) error {
	if c.off {
		if hasLimits(r) {
			return fmt.Errorf("resource limits need a cgroup delegated to uid %d, and none is: %w", os.Geteuid(), ErrUnsupported)
		}
		// Device rules are moot: a user namespace cannot mknod.
		return nil
	}
	err := c.Manager.Set(r)
	if denied(err) && !hasLimits(r) {
		return nil
	}
	return err
}

// Pause, resume, ps, kill --all and stats need the cgroup: without one they
// fail, saying why, rather than act on nothing.
func (c *rootlessCgroups) Pids() ([]int, error) {
	if err := c.none(); err != nil {
		return nil, err
	}
	return c.Manager.Pids()
}

func (c *rootlessCgroups) Freeze() error {
	if err := c.none(); err != nil {
		return err
	}
	return c.Manager.Freeze()
}

func (c *rootlessCgroups) Thaw() error {
	if err := c.none(); err != nil {
		return err
	}
	return c.Manager.Thaw()
}

func (c *rootlessCgroups) Stats() (*cgroups.Stats, error) {
	if err := c.none(); err != nil {
		return nil, err
	}
	return c.Manager.Stats()
}

// none returns an error if the container has no cgroup.
func (c *rootlessCgroups) none() error {
	if !c.off {
		for _, p := range c.Manager.Paths() {
			if _, err := os.Stat(p); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("rootless: the container has no cgroup (none is delegated to uid %d): %w", os.Geteuid(), ErrUnsupported)
}

func (c *rootlessCgroups) Destroy() error {
	err := c.Manager.Destroy()
	if denied(err) || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// denied reports a cgroup operation refused for lack of privilege.
func denied(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)
}

// hasLimits reports whether r asks for any limit besides device rules.
func hasLimits(r *specs.LinuxResources) bool {
	if r == nil {
		return false
	}
	c := *r
	c.Devices = nil
	return !isZero(c)
}

func isZero(r specs.LinuxResources) bool {
	return r.Memory == nil && r.CPU == nil && r.Pids == nil && r.BlockIO == nil &&
		len(r.HugepageLimits) == 0 && r.Network == nil && len(r.Rdma) == 0 && len(r.Unified) == 0
}
