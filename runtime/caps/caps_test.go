package caps

import (
	"os"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNames(t *testing.T) {
	if Known != 40 || Name(40) != "CAP_CHECKPOINT_RESTORE" {
		t.Fatalf("newest capability: %d %s", Known, Name(Known))
	}
	for i := 0; i <= Known; i++ {
		n, err := Number(Name(i))
		if err != nil || n != i {
			t.Errorf("Number(Name(%d)) = %d, %v", i, n, err)
		}
	}
	if Name(41) != "CAP_41" {
		t.Errorf("Name(41) = %s", Name(41))
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		name string
		want int
		err  bool
	}{
		{"CAP_SYS_ADMIN", 21, false},
		{"sys_admin", 21, false},
		{"NET_BIND_SERVICE", 10, false},
		{"cap_bpf", 39, false},
		{"CAP_SYS_ADMINX", 0, true},
		{"", 0, true},
		{"CAP_", 0, true},
	}
	for _, tt := range tests {
		got, err := Number(tt.name)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("Number(%q) = %d, %v; want %d, err %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestParseAndNames(t *testing.T) {
	s, err := Parse([]string{"CAP_KILL", "CAP_CHOWN", "CAP_CHECKPOINT_RESTORE", "CAP_KILL"})
	if err != nil {
		t.Fatal(err)
	}
	if s != 1<<0|1<<5|1<<40 {
		t.Fatalf("set %#x", uint64(s))
	}
	if got := strings.Join(s.Names(), ","); got != "CAP_CHOWN,CAP_KILL,CAP_CHECKPOINT_RESTORE" {
		t.Fatalf("names %s", got)
	}
	_, err = Parse([]string{"CAP_NOPE", "CAP_KILL", "WHAT"})
	if err == nil || !strings.Contains(err.Error(), `"CAP_NOPE", "WHAT"`) {
		t.Fatalf("unknown names: %v", err)
	}
}

func TestValidate(t *testing.T) {
	all := []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}
	tests := []struct {
		name string
		c    *specs.LinuxCapabilities
		want string // substring of the error, "" for none
	}{
		{"nil", nil, ""},
		{"empty", &specs.LinuxCapabilities{}, ""},
		{"docker style", &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}, ""},
		{"ambient", &specs.LinuxCapabilities{Permitted: all, Inheritable: all, Ambient: all[:1]}, ""},
		{"unknown", &specs.LinuxCapabilities{Bounding: []string{"CAP_FOO"}}, `capabilities.bounding: unknown capabilities "CAP_FOO"`},
		{"unknown in two sets", &specs.LinuxCapabilities{Effective: []string{"X"}, Ambient: []string{"Y"}}, `"Y"`},
		{"effective not permitted", &specs.LinuxCapabilities{Effective: all}, "capabilities.effective: CAP_CHOWN, CAP_NET_BIND_SERVICE not in the permitted set"},
		{"ambient not inheritable", &specs.LinuxCapabilities{Permitted: all, Ambient: all[1:]}, "capabilities.ambient: CAP_NET_BIND_SERVICE not in both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.c)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUpTo(t *testing.T) {
	if upTo(0) != 1 || upTo(40) != 1<<41-1 || upTo(63) != ^Set(0) {
		t.Fatal("upTo")
	}
}

func TestUnsupported(t *testing.T) {
	last, err := LastCap()
	if err != nil {
		t.Skip(err)
	}
	all := names[:]
	got, err := Unsupported(&specs.LinuxCapabilities{Bounding: all, Ambient: all})
	if err != nil {
		t.Fatal(err)
	}
	if want := Known - last; len(got) != max(want, 0) {
		t.Fatalf("kernel knows up to %d; unsupported: %v", last, got)
	}
	if _, err := Unsupported(&specs.LinuxCapabilities{Effective: []string{"CAP_NOPE"}}); err == nil {
		t.Fatal("unknown name accepted")
	}
}

func TestLastCap(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Skip(err)
	}
	want, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // probed, then kept
		if got, err := LastCap(); err != nil || got != want {
			t.Fatalf("LastCap: %d, %v; cap_last_cap says %d", got, err, want)
		}
	}
}

func TestSpecRoundTrip(t *testing.T) {
	in := Sets{Bounding: 1<<40 | 1<<21 | 1, Effective: 1 << 21, Permitted: 1<<21 | 1, Inheritable: 1, Ambient: 1}
	out, err := FromSpec(in.Spec())
	if err != nil || out != in {
		t.Fatalf("round trip: %+v, %v; want %+v", out, err, in)
	}
}
