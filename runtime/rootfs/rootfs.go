// Package rootfs builds a container's root filesystem inside its new mount
// namespace: the rootfs bind mount, the spec's mounts, /dev, pivot_root, and
// the masked and read-only paths. Every mount target is resolved inside the
// rootfs without following symlinks out of it, because the rootfs belongs to
// the (hostile) container image.
package rootfs

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotImplemented is returned by parts not built yet.
var ErrNotImplemented = errors.New("rootfs: not implemented")

// Options are the runtime's choices that the spec does not carry.
type Options struct {
	// NoPivot uses MS_MOVE + chroot instead of pivot_root (runc --no-pivot),
	// for roots that pivot_root refuses (an initramfs).
	NoPivot bool
	// InUserNS is set when the container has its own user namespace: device
	// nodes are then bind-mounted from the host instead of created.
	InUserNS bool
}

// Root is a root filesystem prepared by Setup, not yet pivoted into.
type Root struct {
	spec *specs.Spec
	path string // absolute path of the rootfs (the bind-mounted copy)
	opts Options
}

// Setup must run in the container's init process, in its new mount
// namespace. It makes the old root's propagation private (or as
// linux.rootfsPropagation says), bind-mounts root.path onto itself, performs
// spec.Mounts in order, and populates /dev. It stops before pivot_root so the
// createContainer hooks can run on the prepared tree.
func Setup(spec *specs.Spec, bundle string, opts Options) (*Root, error) {
	return nil, ErrNotImplemented
}

// Pivot switches the calling process's root to r (pivot_root, or chroot with
// NoPivot), detaches the old root, then applies maskedPaths, readonlyPaths
// and root.readonly. After Pivot the process's cwd is "/" of the container.
func (r *Root) Pivot() error {
	return ErrNotImplemented
}
