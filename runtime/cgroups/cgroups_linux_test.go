package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// realCgroup gives a test its own cgroup path under a unique top-level
// parent on the real host, and removes the parent (and checks nothing of it
// remains) when the test ends.
func realCgroup(t *testing.T) (Manager, string) {
	t.Helper()
	testutil.RequiresRoot(t)
	parent := fmt.Sprintf("estiba-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	testutil.CheckNoCgroups(t, DefaultRoot, parent)
	m, err := New(Config{Path: "/" + parent + "/ctr", Root: DefaultRoot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		parents, err := New(Config{Path: "/" + parent, Root: DefaultRoot})
		if err == nil {
			err = parents.Destroy()
		}
		if err != nil {
			t.Errorf("remove test parent cgroup: %v", err)
		}
	})
	return m, parent
}

// startSleep starts a sleep that the test kills and reaps at its end.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func ptr[T any](v T) *T { return &v }

func TestRealApplySetDestroy(t *testing.T) {
	m, _ := realCgroup(t)
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
	})
	if err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("Pids() = %v, want it to hold %d", pids, cmd.Process.Pid)
	}
	checks := map[string]map[string]string{}
	if m.Mode() == ModeV2 {
		checks[""] = map[string]string{"memory.max": "67108864", "pids.max": "42", "cpu.weight": "20", "cpu.max": "50000 100000"}
	} else {
		checks["memory"] = map[string]string{"memory.limit_in_bytes": "67108864"}
		checks["pids"] = map[string]string{"pids.max": "42"}
		checks["cpu"] = map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"}
	}
	paths := m.Paths()
	for ctrl, files := range checks {
		for f, want := range files {
			got, err := os.ReadFile(filepath.Join(paths[ctrl], f))
			if err != nil {
				t.Error(err)
				continue
			}
			if strings.TrimSpace(string(got)) != want {
				t.Errorf("%s/%s = %q, want %q", paths[ctrl], f, strings.TrimSpace(string(got)), want)
			}
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range paths {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still there after Destroy (err %v)", d, err)
		}
	}
}
