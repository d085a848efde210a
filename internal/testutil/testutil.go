// Package testutil holds helpers shared by tests: gates for root-only and
// tool-dependent tests, and checks that a test left nothing of ours behind.
package testutil

import (
	"io"
	"os"
	"os/exec"
	"testing"
)

// RequiresRoot skips t unless the test runs as root. Integration tests that
// create namespaces, cgroups, mounts or network devices call it first; CI runs
// them as root, so a skip there is a bug in CI, not in the test.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("requires root")
	}
}

// RequiresCommand skips t unless every named program is on PATH. CI installs
// them (scripts/setup.sh); on a developer machine a skip says what is missing.
func RequiresCommand(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not on PATH in CI: scripts/setup.sh must install it", n)
			}
			t.Skipf("%s not on PATH (run scripts/setup.sh)", n)
		}
	}
}

// StartReady starts cmd, a process that prints "ready" once set up and then
// waits on its stdin (say, `sh -c '...; echo ready; read x'`), and returns
// its pid once it said so. It is killed and reaped when the test ends.
func StartReady(t testing.TB, cmd *exec.Cmd) int {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	buf := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("%s not ready: %q, %v", cmd.Path, buf, err)
	}
	return cmd.Process.Pid
}
