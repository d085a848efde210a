package initproc

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "prog")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "noexec"), nil, 0o644)
	tests := []struct {
		file string
		env  []string
		want string
		err  bool
	}{
		{"prog", []string{"PATH=/nonexistent:" + dir}, exe, false},
		{"/abs/path", nil, "/abs/path", false},
		{"noexec", []string{"PATH=" + dir}, "", true},
		{"prog", []string{"PATH=/nonexistent"}, "", true},
		{"sh", nil, "/usr/bin/sh", false}, // default PATH
	}
	for _, tt := range tests {
		got, err := LookPath(tt.file, tt.env)
		if (err != nil) != tt.err || !tt.err && got != tt.want {
			if tt.file == "sh" && got == "/bin/sh" {
				continue
			}
			t.Errorf("LookPath(%q, %v) = %q, %v", tt.file, tt.env, got, err)
		}
	}
}

func TestSchedAttr(t *testing.T) {
	a, err := schedAttr(&specs.Scheduler{Policy: specs.SchedBatch, Nice: 5, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}})
	if err != nil || a.Policy != 3 || a.Nice != 5 || a.Flags != 1 {
		t.Fatalf("schedAttr = %+v, %v", a, err)
	}
	if _, err := schedAttr(&specs.Scheduler{Policy: "SCHED_FOO"}); err == nil {
		t.Fatal("unknown policy accepted")
	}
	if _, err := schedAttr(&specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_FOO"}}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestRlimitNames(t *testing.T) {
	if len(Rlimits) != 16 {
		t.Fatalf("%d rlimits known, want 16", len(Rlimits))
	}
	if err := setRlimits([]specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}); err == nil {
		t.Fatal("unknown rlimit accepted")
	}
}
