package specgen

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefault(t *testing.T) {
	s := Default(false)
	if s.Version != specs.Version || s.Root.Path != "rootfs" || !s.Root.Readonly || !s.Process.Terminal {
		t.Fatalf("default spec = %+v", s)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			t.Fatal("user namespace in the default spec")
		}
	}
}

func TestRootless(t *testing.T) {
	s := Default(true)
	var user, net bool
	for _, ns := range s.Linux.Namespaces {
		user = user || ns.Type == specs.UserNamespace
		net = net || ns.Type == specs.NetworkNamespace
	}
	if !user || net || len(s.Linux.UIDMappings) != 1 || s.Linux.Resources != nil {
		t.Fatalf("rootless spec: user=%v net=%v maps=%v", user, net, s.Linux.UIDMappings)
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys/fs/cgroup" || m.Destination == "/sys" && m.Type == "sysfs" {
			t.Fatalf("rootless spec mounts %s as %s", m.Destination, m.Type)
		}
	}
}
