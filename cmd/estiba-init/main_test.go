package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
)

// TestRuntimeUsesInitBeside builds estiba-runtime with estiba-init beside
// it: a container runs when both come from one build, and create fails
// with a clear message when init's version differs (which also shows that
// init ran from estiba-init, not from the runtime binary).
func TestRuntimeUsesInitBeside(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "busybox")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	build := func(pkg, name, version string) {
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", filepath.Join(dir, name), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	build("../estiba-runtime", "estiba-runtime", "v1")
	build(".", "estiba-init", "v2")
	bundle := busyboxBundle(t, dir)
	run := func(id string) (string, error) {
		cmd := exec.Command(filepath.Join(dir, "estiba-runtime"), "--root", filepath.Join(dir, "state"), "run", "--bundle", bundle, id)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("mismatch"); err == nil || !strings.Contains(out, `init binary is version "v2", the runtime "v1"`) {
		t.Fatalf("run with another build's init: %v\n%s", err, out)
	}
	build(".", "estiba-init", "v1")
	if out, err := run("match"); err != nil || !strings.Contains(out, "hello") {
		t.Fatalf("run: %v\n%s", err, out)
	}
}

func busyboxBundle(t *testing.T, dir string) string {
	bb, _ := exec.LookPath("busybox")
	bundle := filepath.Join(dir, "bundle")
	for _, d := range []string{"rootfs/bin", "rootfs/proc", "rootfs/dev", "rootfs/sys"} {
		if err := os.MkdirAll(filepath.Join(bundle, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "rootfs/bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "estiba-runtime"), "spec", "--bundle", bundle)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spec: %v\n%s", err, out)
	}
	p := filepath.Join(bundle, "config.json")
	var spec map[string]any
	b, err = os.ReadFile(p)
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/busybox", "echo", "hello"}
	if b, err = json.Marshal(spec); err == nil {
		err = os.WriteFile(p, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bundle
}
