package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/specgen"
)

// TestJoinUserNamespaceByPath: `run` and `exec` of the built binary with a
// user namespace given by path (held by a sleep here), as a pod's
// containers share one.
func TestJoinUserNamespaceByPath(t *testing.T) {
	testutil.RequiresRoot(t)
	dir, bin := buildRuntime(t)
	bundle := busyboxBundle(t, dir)
	holder := exec.Command("sleep", "1000")
	holder.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 300000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 300000, Size: 65536}},
	}
	if err := holder.Start(); err != nil {
		t.Skipf("user namespace holder: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	userns := fmt.Sprintf("/proc/%d/ns/user", holder.Process.Pid)
	want, _ := os.Readlink(userns)
	s := specgen.Default(false)
	s.Process.Terminal = false
	s.Process.Args = []string{"sleep", "100"}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: userns})
	b, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	root := filepath.Join(dir, "state")
	rt := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		cmd.Dir = bundle
		// A file, not a pipe: the container's process inherits it.
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
	const id = "estiba-nsjoin-blackbox"
	t.Cleanup(func() { rt("delete", "--force", id) })
	if out, err := rt("run", "--detach", id); err != nil {
		t.Fatalf("run: %v: %s", err, out)
	}
	for _, tc := range []struct{ name, cmd, want string }{
		{"uid_map", "cat /proc/self/uid_map", "0 300000 65536"},
		{"user namespace", "readlink /proc/self/ns/user", want},
		{"uid", "id -u", "0"},
	} {
		out, err := rt("exec", id, "sh", "-c", tc.cmd)
		if got := strings.Join(strings.Fields(out), " "); err != nil || got != tc.want {
			t.Errorf("exec %s: %v: %q, want %q", tc.name, err, got, tc.want)
		}
	}
	if out, err := rt("delete", "--force", id); err != nil {
		t.Fatalf("delete: %v: %s", err, out)
	}
	if ents, _ := os.ReadDir(root); len(ents) > 0 {
		t.Errorf("state left: %v", ents)
	}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == id {
			t.Errorf("cgroup left: %s", p)
		}
		if strings.Count(p, "/") > 5 {
			return filepath.SkipDir
		}
		return nil
	})
}
