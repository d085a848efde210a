package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	one := 1
	zero := 0
	st := &specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: 42, Bundle: "/b"}
	tests := []struct {
		name    string
		hooks   []specs.Hook
		wantErr string
		want    string
	}{
		{"stdin state and env", []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "{ echo $FOO; cat; }", "x"}, Env: []string{"FOO=bar"}}}, "", `bar
{"ociVersion":"` + specs.Version + `","id":"c1","status":"creating","pid":42,"bundle":"/b"}`},
		{"failure", []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo bad >&2; exit 3"}}}, "exit status 3: bad", ""},
		{"timeout", []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "exec sleep 5"}, Timeout: &one}}, "timed out after 1s", ""},
		{"zero timeout", []specs.Hook{{Path: "/bin/true", Timeout: &zero}}, "timeout must be positive", ""},
		{"missing", []specs.Hook{{Path: "/nonexistent"}}, "no such file", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(out)
			for i := range tt.hooks {
				if tt.want != "" {
					tt.hooks[i].Args[2] += " > " + out
				}
			}
			err := Run("test", tt.hooks, st)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(out)
			if strings.TrimSpace(string(b)) != tt.want {
				t.Fatalf("got %q want %q", b, tt.want)
			}
		})
	}
}

func TestRunAllContinues(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	hs := []specs.Hook{
		{Path: "/bin/false"},
		{Path: "/bin/sh", Args: []string{"sh", "-c", "echo ran > " + out}},
	}
	err := RunAll("poststop", hs, &specs.State{})
	if err == nil || !strings.Contains(err.Error(), "poststop hook #0") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "ran\n" {
		t.Fatalf("second hook did not run after the first failed")
	}
}
