package procfs

import (
	"strings"
	"testing"
)

func TestSysctlPath(t *testing.T) {
	tests := []struct {
		key, want string
		err       bool
	}{
		{"net.ipv4.ip_forward", "sys/net/ipv4/ip_forward", false},
		{"kernel.shmmax", "sys/kernel/shmmax", false},
		{"", "", true},
		{"net/../../etc", "", true},
		{"a..b", "", true},
	}
	for _, tt := range tests {
		got, err := SysctlPath(tt.key)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("SysctlPath(%q) = %q, %v", tt.key, got, err)
		}
	}
}

func TestOpenRefusesNonProc(t *testing.T) {
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a procfs") {
		t.Fatalf("Open(tmpdir) = %v, want not a procfs", err)
	}
}

func TestReadBeneath(t *testing.T) {
	h, err := Open("/proc")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b, err := h.ReadFile("self/status")
	if err != nil || !strings.Contains(string(b), "Pid:") {
		t.Fatalf("read self/status: %v", err)
	}
	// A magic link (fd/N) must not be followed out of procfs.
	if _, err := h.ReadFile("self/cwd/x"); err == nil {
		t.Fatal("followed magic link self/cwd")
	}
	if _, err := h.ReadFile("../etc/passwd"); err == nil {
		t.Fatal("escaped procfs with ..")
	}
}
