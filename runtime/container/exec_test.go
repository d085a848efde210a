package container

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestStaticELF: the program-header reading agrees with debug/elf on the
// binaries at hand (dynamic ones from the host, the static test binary
// built with CGO_ENABLED=0 if any), and refuses what is not ELF.
func TestStaticELF(t *testing.T) {
	var paths []string
	for _, name := range []string{"sh", "ls", "busybox", "true"} {
		if p, err := exec.LookPath(name); err == nil {
			paths = append(paths, p)
		}
	}
	self, _ := os.Executable()
	paths = append(paths, self)
	for _, p := range paths {
		want, ok := debugELFStatic(p)
		if !ok {
			continue
		}
		if got := staticELF(p); got != want {
			t.Errorf("staticELF(%s) = %v, debug/elf says %v", p, got, want)
		}
	}
	notELF := filepath.Join(t.TempDir(), "script")
	os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755)
	if staticELF(notELF) || staticELF("/nonexistent") {
		t.Error("a script or a missing file counts as a static binary")
	}
}

func debugELFStatic(path string) (static, ok bool) {
	f, err := elf.Open(path)
	if err != nil {
		return false, false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, true
		}
	}
	return true, true
}
