package defaultprofile

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rulesFor returns the actions of the rules naming syscall.
func rulesFor(p *specs.LinuxSeccomp, syscall string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range p.Syscalls {
		if slices.Contains(r.Names, syscall) {
			out = append(out, r)
		}
	}
	return out
}

func TestDocker(t *testing.T) {
	tests := []struct {
		name      string
		caps      []string
		wantMount bool
	}{
		{"no caps", nil, false},
		{"docker defaults", []string{"CAP_CHOWN", "CAP_KILL"}, false},
		{"sys_admin", []string{"CAP_SYS_ADMIN"}, true},
		{"short lower-case name", []string{"sys_admin"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Docker(tt.caps)
			if err != nil {
				t.Fatal(err)
			}
			if p.DefaultAction != specs.ActErrno || !slices.Contains(p.Architectures, specs.ArchX86_64) {
				t.Fatalf("default %s arches %v", p.DefaultAction, p.Architectures)
			}
			if got := len(rulesFor(p, "mount")) > 0; got != tt.wantMount {
				t.Errorf("mount rule present: %v, want %v", got, tt.wantMount)
			}
			if len(rulesFor(p, "read")) == 0 {
				t.Error("read not allowed")
			}
		})
	}
}
