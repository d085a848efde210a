package container

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/estiba/estiba/runtime/specgen"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		want   error
	}{
		{"default", func(*specs.Spec) {}, nil},
		{"old version", func(s *specs.Spec) { s.Version = "0.9.0" }, ErrInvalid},
		{"no root", func(s *specs.Spec) { s.Root = nil }, ErrInvalid},
		{"no process", func(s *specs.Spec) { s.Process = nil }, nil},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, ErrInvalid},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, ErrInvalid},
		{"bad env", func(s *specs.Spec) { s.Process.Env = []string{"NOEQUALS"} }, ErrInvalid},
		{"bad rlimit", func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_FOO"}} }, ErrInvalid},
		{"soft above hard", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 5}}
		}, ErrInvalid},
		{"unknown ns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "foo"})
		}, ErrInvalid},
		{"dup ns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, ErrInvalid},
		{"userns without maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, ErrInvalid},
		{"maps without userns", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}}
		}, ErrInvalid},
		{"hostname without uts", func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
		}, ErrInvalid},
		{"hostname with uts by path", func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.UTSNamespace, Path: "/proc/1/ns/uts"}}
		}, nil},
		{"no mount namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}}
			s.Hostname = ""
		}, ErrUnsupported},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.panic": "1"} }, ErrInvalid},
		{"net sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"} }, nil},
		{"apparmor absent", func(s *specs.Spec) { s.Process.ApparmorProfile = "x" }, ErrUnsupported},
		{"relative mount", func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{Destination: "mnt"}) }, ErrInvalid},
		{"time offsets without ns", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
		}, ErrInvalid},
	}
	for _, tt := range tests {
		s := specgen.Default(false)
		tt.mutate(s)
		err := Validate(s)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Validate = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "a\x00b"} {
		if validID(id) == nil {
			t.Errorf("validID(%q) accepted", id)
		}
	}
	for _, id := range []string{"abc", "a.b-c_d", "0123456789abcdef"} {
		if err := validID(id); err != nil {
			t.Errorf("validID(%q) = %v", id, err)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	r := &Runtime{Root: t.TempDir()}
	if _, err := r.State("nope"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("state of missing: %v", err)
	}
	rec := newRecord("c1", "/b", specgen.Default(false))
	rec.Pid, rec.StartTime = 999999, 1
	if err := osMkdir(r.dir("c1")); err != nil {
		t.Fatal(err)
	}
	if err := r.save(rec); err != nil {
		t.Fatal(err)
	}
	st, err := r.State("c1")
	if err != nil || st.Status != specs.StateStopped || st.Pid != 0 || st.Bundle != "/b" {
		t.Fatalf("state = %+v, %v", st, err)
	}
	list, err := r.List()
	if err != nil || len(list) != 1 || list[0].ID != "c1" {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func TestDeleteForceRemovesBrokenState(t *testing.T) {
	r := &Runtime{Root: t.TempDir(), CgroupRoot: t.TempDir()}
	if err := osMkdir(r.dir("half")); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete("half", false); !errors.Is(err, ErrNotExist) {
		t.Fatalf("delete without force: %v", err)
	}
	if err := r.Delete("half", true); err != nil {
		t.Fatal(err)
	}
	if _, err := osStat(r.dir("half")); err == nil {
		t.Fatal("state dir of a half-created container left after delete --force")
	}
	if err := r.Delete("never", true); err != nil {
		t.Fatalf("delete --force of a missing container: %v", err)
	}
}
