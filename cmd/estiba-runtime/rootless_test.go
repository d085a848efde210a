package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/estiba/estiba/internal/testutil"
)

// TestRootless runs the built binary as an unprivileged user (nobody) on a
// bundle from `spec --rootless`, as runc's rootless mode is used: state
// under $XDG_RUNTIME_DIR, the user's own uid mapped to root, no cgroup
// (none is delegated here), and nothing left after delete.
func TestRootless(t *testing.T) {
	testutil.RequiresRoot(t)
	const nobody = 65534
	dir, bin := buildRuntime(t)
	bundle, xdg := busyboxBundle(t, dir), filepath.Join(dir, "xdg")
	os.Mkdir(xdg, 0o700)
	for _, p := range []string{bundle, xdg} {
		filepath.Walk(p, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, nobody, nobody) })
	}
	as := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = bundle
		cmd.Env = []string{"PATH=/usr/bin:/bin", "XDG_RUNTIME_DIR=" + xdg}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
		// A file, not a pipe: the container's process inherits it, and
		// a pipe would not reach EOF before it exits.
		f, err := os.CreateTemp(dir, "out")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
		err = cmd.Run()
		out, _ := os.ReadFile(f.Name())
		return string(out), err
	}
	if out, err := as("spec", "--rootless"); err != nil {
		t.Fatalf("spec --rootless: %v: %s", err, out)
	}
	var spec specs.Spec
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	setSpec := func(mutate func(*specs.Spec)) {
		s := spec
		p := *spec.Process
		s.Process = &p
		s.Process.Terminal = false
		s.Process.Args = []string{"sleep", "100"}
		l := *spec.Linux
		s.Linux = &l
		if mutate != nil {
			mutate(&s)
		}
		b, _ := json.Marshal(&s)
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		mutate  func(*specs.Spec)
		wantErr string
	}{
		{name: "spec --rootless"},
		{name: "memory limit without a delegated cgroup", wantErr: "resource limits need a cgroup delegated",
			mutate: func(s *specs.Spec) {
				lim := int64(64 << 20)
				s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &lim}}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setSpec(tc.mutate)
			id := "rootless-" + strings.ReplaceAll(tc.name, " ", "-")
			t.Cleanup(func() { as("delete", "--force", id) })
			out, err := as("create", id)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(out, tc.wantErr) {
					t.Fatalf("create: %v: %s, want an error with %q", err, out, tc.wantErr)
				}
				checkNothingLeft(t, xdg)
				return
			}
			if err != nil {
				t.Fatalf("create: %v: %s", err, out)
			}
			if _, err := os.Stat(filepath.Join(xdg, "estiba-runtime", id)); err != nil {
				t.Errorf("state not under $XDG_RUNTIME_DIR/estiba-runtime: %v", err)
			}
			if out, err := as("start", id); err != nil {
				t.Fatalf("start: %v: %s", err, out)
			}
			out, err = as("exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map")
			if f := strings.Fields(out); err != nil || len(f) != 4 || f[0] != "0" || f[1] != "0" || f[2] != "65534" || f[3] != "1" {
				t.Errorf("exec: %v: %q, want uid 0 mapped to 65534", err, out)
			}
			// No cgroup here: what needs one says so.
			for _, args := range [][]string{{"pause", id}, {"kill", "--all", id, "KILL"}} {
				if out, err := as(args...); err == nil || !strings.Contains(out, "no cgroup") {
					t.Errorf("%v without a cgroup: %v: %s, want a clear error", args, err, out)
				}
			}
			if out, err := as("kill", id, "KILL"); err != nil {
				t.Fatalf("kill: %v: %s", err, out)
			}
			for i := 0; i < 100; i++ {
				if out, _ := as("state", id); strings.Contains(out, `"stopped"`) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if out, err := as("delete", id); err != nil {
				t.Fatalf("delete: %v: %s", err, out)
			}
			checkNothingLeft(t, xdg)
		})
	}
}

// checkNothingLeft checks the rootless state dir is empty and no process
// of the bundle's remains.
func checkNothingLeft(t *testing.T, xdg string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(xdg, "estiba-runtime"))
	for _, e := range ents {
		t.Errorf("state left: %s", e.Name())
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, _ := os.ReadFile(p); strings.HasPrefix(string(b), "sleep\x00100") {
			var st syscall.Stat_t
			if syscall.Stat(filepath.Dir(p), &st) == nil && st.Uid == 65534 {
				t.Errorf("process left: %s", filepath.Dir(p))
			}
		}
	}
}

// buildRuntime builds the runtime binary (static, as make build does) into
// a temp dir that other users may enter, and returns both.
func buildRuntime(t *testing.T) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	bin = filepath.Join(dir, "estiba-runtime")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir, bin
}

// busyboxBundle makes dir/bundle with a busybox rootfs (no config.json).
func busyboxBundle(t *testing.T, dir string) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	bundle := filepath.Join(dir, "bundle")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		os.MkdirAll(filepath.Join(bundle, "rootfs", d), 0o755)
	}
	os.WriteFile(filepath.Join(bundle, "rootfs/bin/busybox"), bb, 0o755)
	for _, a := range []string{"sh", "cat", "id", "sleep", "readlink"} {
		os.Symlink("busybox", filepath.Join(bundle, "rootfs/bin", a))
	}
	return bundle
}
