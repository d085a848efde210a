// Package testutil holds helpers shared by tests: gates for root-only and
// tool-dependent tests, and checks that a test left nothing of ours behind.
package testutil

import (
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
