package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/specgen"
)

// TestForegroundSignalsReachContainer: a signal sent to a foreground
// `run` or `exec` reaches the container's process, which handles it (the
// shell's trap exits 3, or 4 in the exec'd one).
func TestForegroundSignalsReachContainer(t *testing.T) {
	testutil.RequiresRoot(t)
	dir, bin := buildRuntime(t)
	bundle := busyboxBundle(t, dir)
	s := specgen.Default(false)
	s.Process.Terminal = false
	// Ready once the trap is set: the marker is written after it.
	s.Process.Args = []string{"sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done"}
	b, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	root := filepath.Join(dir, "state")
	start := func(args ...string) (*exec.Cmd, *os.File) {
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		cmd.Dir = bundle
		// A file, not a pipe: the container's process inherits it.
		f, err := os.CreateTemp(dir, "out")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, f
	}
	waitFor := func(f *os.File, marker string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if out, _ := os.ReadFile(f.Name()); strings.Contains(string(out), marker) {
				return
			}
		}
		out, _ := os.ReadFile(f.Name())
		t.Fatalf("no %q in the output: %s", marker, out)
	}
	exitCode := func(cmd *exec.Cmd) int {
		var ee *exec.ExitError
		if err := cmd.Wait(); errors.As(err, &ee) {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	}

	run, out := start("run", "sig")
	waitFor(out, "ready")
	exe, exeOut := start("exec", "sig", "sh", "-c", "trap 'echo exec-got-term; exit 4' TERM; echo exec-ready; while :; do sleep 0.05; done")
	waitFor(exeOut, "exec-ready")
	exe.Process.Signal(syscall.SIGTERM)
	if code := exitCode(exe); code != 4 {
		o, _ := os.ReadFile(exeOut.Name())
		t.Errorf("exec: exit %d after SIGTERM, want 4 (the process's trap): %s", code, o)
	}
	run.Process.Signal(syscall.SIGTERM)
	if code := exitCode(run); code != 3 {
		o, _ := os.ReadFile(out.Name())
		t.Errorf("run: exit %d after SIGTERM, want 3 (the container's trap): %s", code, o)
	}

	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("state left behind: %v", entries)
	}
}
