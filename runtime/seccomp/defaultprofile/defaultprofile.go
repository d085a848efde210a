// Package defaultprofile provides Docker's default seccomp profile as an OCI
// linux.seccomp, for containers that ask for no profile of their own.
package defaultprofile

import (
	"errors"
	"fmt"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Docker returns Docker's default profile (github.com/moby/profiles/seccomp)
// resolved as Docker resolves it for a container: for the native
// architecture and its sub-architectures, for the running kernel's version,
// and keeping the rules whose capability conditions the container's bounding
// set (caps; "CAP_SYS_ADMIN" or "SYS_ADMIN") meets — with CAP_SYS_ADMIN,
// for example, mount and clone's namespace flags are allowed.
func Docker(caps []string) (*specs.LinuxSeccomp, error) {
	bounding := make([]string, len(caps))
	for i, c := range caps {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		bounding[i] = c
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: bounding}}}
	p, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		return nil, fmt.Errorf("docker default seccomp profile: %w", err)
	}
	if p == nil {
		return nil, errors.New("docker default seccomp profile: empty")
	}
	return p, nil
}
