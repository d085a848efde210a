package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// InitStub returns the path of the init stub (runtime/initstub/c/stub.c)
// compiled with cc, once per test process, in a directory every user may
// enter (a container's mapped root execs it). It skips t without cc, and
// fails it in CI, where scripts/setup.sh installs gcc.
func InitStub(t testing.TB) string {
	t.Helper()
	RequiresCommand(t, "cc")
	stub.once.Do(func() { stub.path, stub.err = buildStub() })
	if stub.err != nil {
		t.Fatalf("build the init stub: %v", stub.err)
	}
	return stub.path
}

var stub struct {
	once sync.Once
	path string
	err  error
}

// StubCFlags are the flags the Makefile builds the stub with.
var StubCFlags = []string{"-static", "-nostdlib", "-ffreestanding", "-fno-builtin", "-fno-stack-protector",
	"-fno-asynchronous-unwind-tables", "-O2", "-Wall", "-Wextra", "-Werror"}

func buildStub() (string, error) {
	src, err := findUp(filepath.Join("runtime", "initstub", "c", "stub.c"))
	if err != nil {
		return "", err
	}
	// Not t.TempDir: every test of the process shares the binary. The
	// package's TestMain removes it (CleanupStub).
	dir, err := os.MkdirTemp("", "estiba-stub-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "estiba-init-stub")
	args := append(append([]string{}, StubCFlags...), "-o", out, src)
	if b, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", errors.New(err.Error() + ": " + string(b))
	}
	return out, nil
}

// CleanupStub removes the stub InitStub built, if any. Call it from
// TestMain after m.Run.
func CleanupStub() {
	if stub.path != "" {
		os.RemoveAll(filepath.Dir(stub.path))
	}
}

// findUp finds rel in the working directory or one of its parents (go test
// runs in the package's directory, somewhere below the module root).
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New(rel + " not found above the working directory")
		}
		dir = parent
	}
}
