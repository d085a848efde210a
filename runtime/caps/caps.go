// Package caps applies the five capability sets of an OCI process.
package caps

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotImplemented is returned by parts not built yet.
var ErrNotImplemented = errors.New("caps: not implemented")

// Validate rejects unknown capability names with a clear error. Names the
// running kernel does not know (newer than it) are not errors: they are
// dropped when applied, as runc does.
func Validate(c *specs.LinuxCapabilities) error {
	return ErrNotImplemented
}

// DropBounding drops from the bounding set every capability not in c.Bounding.
// It must run before the process changes uid (it needs CAP_SETPCAP).
func DropBounding(c *specs.LinuxCapabilities) error {
	return ErrNotImplemented
}

// Apply sets the effective, permitted and inheritable sets and then the
// ambient set. It must run after the uid change (with PR_SET_KEEPCAPS set
// before it), as the last step before execve.
func Apply(c *specs.LinuxCapabilities) error {
	return ErrNotImplemented
}
