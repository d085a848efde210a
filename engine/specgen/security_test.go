package specgen

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestHostCapsAndSeccompProfiles: --privileged and --cap-add ALL grant only
// what the daemon holds; seccomp=<profile> comes inline (docker CLI) or as
// a daemon-side path.
func TestHostCapsAndSeccompProfiles(t *testing.T) {
	profile := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`
	file := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(file, []byte(profile), 0o644)
	host := []string{"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"}
	for _, tc := range []struct {
		name  string
		hc    types.HostConfig
		err   error
		check func(t *testing.T, s *specs.Spec)
	}{
		{name: "privileged", hc: types.HostConfig{Privileged: true}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Capabilities.Bounding, host) {
				t.Errorf("caps %v, want the host's %v", s.Process.Capabilities.Bounding, host)
			}
		}},
		{name: "cap-add ALL", hc: types.HostConfig{CapAdd: []string{"all"}}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Capabilities.Bounding, host) {
				t.Errorf("caps %v", s.Process.Capabilities.Bounding)
			}
		}},
		{name: "defaults untouched", check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Capabilities.Bounding, sorted(DefaultCaps)) {
				t.Errorf("caps %v", s.Process.Capabilities.Bounding)
			}
		}},
		{name: "inline profile", hc: types.HostConfig{SecurityOpt: []string{"seccomp=" + profile}}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActAllow || len(s.Linux.Seccomp.Syscalls) != 1 {
				t.Errorf("seccomp %+v", s.Linux.Seccomp)
			}
		}},
		{name: "profile path", hc: types.HostConfig{SecurityOpt: []string{"seccomp=" + file}}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp == nil || len(s.Linux.Seccomp.Syscalls) != 1 {
				t.Errorf("seccomp %+v", s.Linux.Seccomp)
			}
		}},
		{name: "bad inline profile", hc: types.HostConfig{SecurityOpt: []string{"seccomp={nope"}}, err: errdefs.ErrInvalid},
		{name: "missing profile", hc: types.HostConfig{SecurityOpt: []string{"seccomp=/nonexistent"}}, err: errdefs.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := tc.hc
			in := &Input{ID: "0123456789abcdef", Config: &types.Config{Cmd: []string{"/bin/true"}}, HostConfig: &hc, Rootfs: t.TempDir(), ContainerDir: t.TempDir()}
			s, err := Generate(in, &Defaults{VolumesDir: t.TempDir(), HostCaps: host})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}
