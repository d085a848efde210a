package ocirt

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/runtime/container"
	"github.com/estiba/estiba/runtime/initproc"
	"github.com/estiba/estiba/runtime/specgen"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The test binary is also the spawner helper and the containers' init.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == initproc.Arg {
		initproc.Main("")
		return
	}
	if root := os.Getenv("ESTIBA_TEST_SPAWNER_ROOT"); root != "" {
		rt := &Runtime{RT: &container.Runtime{Root: root}, ConsoleDir: filepath.Join(root, "console")}
		if err := ServeSpawner(os.NewFile(3, "spawner"), rt); err != nil {
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// bundle makes a busybox bundle running args; with userns the container
// gets its own id range, as the engine's --userns=auto does.
func bundle(t *testing.T, args []string, userns bool) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	dir := t.TempDir()
	// A mapped root must reach the rootfs.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("busybox", filepath.Join(root, "bin/sh"))
	s := specgen.Default(false)
	s.Process.Terminal = false
	s.Process.Args = args
	s.Linux.CgroupsPath = "/" + cgroupParent() + "/" + filepath.Base(dir)
	if userns {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 3 << 20, Size: 65536}}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
	}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cgroupParent holds this test process's containers' cgroups.
func cgroupParent() string { return "estiba-ocirt-test-" + strconv.Itoa(os.Getpid()) }

func newSpawner(t *testing.T) (*Spawner, string) {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	// Runs last: the runtime removed each container's cgroup, the parent
	// goes here, and then nothing of ours may remain.
	testutil.CheckNoCgroups(t, "/sys/fs/cgroup", cgroupParent())
	t.Cleanup(func() {
		for _, d := range testutil.FindCgroups("/sys/fs/cgroup", cgroupParent(), 2) {
			os.Remove(d)
		}
	})
	// We stand for the monitor, a child subreaper: the helper hands it
	// the inits of containers with a user namespace by orphaning them
	// (see CreateOptions.CloneParent).
	if err := monitor.BecomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rt := &Runtime{RT: &container.Runtime{Root: root}, ConsoleDir: filepath.Join(root, "console")}
	s := &Spawner{Runtime: rt, Command: func() *exec.Cmd {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), "ESTIBA_TEST_SPAWNER_ROOT="+root)
		cmd.Stderr = os.Stderr
		return cmd
	}}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.Name() != "console" {
				t.Errorf("runtime state left behind: %s", e.Name())
			}
		}
	})
	return s, root
}

// The helper forks init as our child (CLONE_PARENT): we reap it and get its
// output; a failed Create leaves nothing.
func TestSpawnerInitIsOurChild(t *testing.T) {
	for _, tc := range []struct {
		name   string
		userns bool
	}{{"host ids", false}, {"userns", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSpawner(t)
			b := bundle(t, []string{"sh", "-c", "echo hello from $$"}, tc.userns)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			id := "ocirt-spawner-" + strconv.Itoa(os.Getpid())
			ctx := context.Background()
			pid, console, err := s.Create(ctx, id, b, monitor.Stdio{Stdout: w, Stderr: w})
			w.Close()
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if console != nil {
				t.Error("a console for a container without a terminal")
			}
			st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err != nil {
				t.Fatal(err)
			}
			fields := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
			if ppid, _ := strconv.Atoi(fields[1]); ppid != os.Getpid() {
				t.Errorf("init's parent is %d, want us (%d)", ppid, os.Getpid())
			}
			if err := s.Start(ctx, id); err != nil {
				t.Fatalf("start: %v", err)
			}
			out, _ := io.ReadAll(r)
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
				t.Fatalf("reap init: %v", err)
			}
			if ws.ExitStatus() != 0 || string(out) != "hello from 1\n" {
				t.Errorf("exit %d, output %q", ws.ExitStatus(), out)
			}
			if err := s.Delete(ctx, id); err != nil {
				t.Fatalf("delete: %v", err)
			}
		})
	}
}

// A Create that fails before the fork gives no pid; one that fails after
// gives the pid of the killed init, which only we, its parent, can reap.
// The helper survives failed requests and is replaced when it is gone.
func TestSpawnerCreateErrors(t *testing.T) {
	s, _ := newSpawner(t)
	ctx := context.Background()
	pid, _, err := s.Create(ctx, "ocirt-spawner-bad", filepath.Join(t.TempDir(), "missing"), monitor.Stdio{})
	if err == nil || pid != 0 {
		t.Fatalf("create from a missing bundle: pid %d, err %v", pid, err)
	}
	pid, _, err = s.Create(ctx, "ocirt-spawner-noexec", bundle(t, []string{"no-such-binary"}, true), monitor.Stdio{})
	if err == nil {
		t.Fatal("create with a missing executable succeeded")
	}
	if pid > 0 {
		if _, err := unix.Wait4(pid, nil, 0, nil); err != nil {
			t.Errorf("reap the failed init %d: %v", pid, err)
		}
	}
	s.Close()
	pid, _, err = s.Create(ctx, "ocirt-spawner-again", bundle(t, []string{"sh", "-c", "exit 0"}, false), monitor.Stdio{})
	if err != nil {
		t.Fatalf("create after a restart of the helper: %v", err)
	}
	if err := s.Kill(ctx, "ocirt-spawner-again", int(unix.SIGKILL), true); err != nil {
		t.Error(err)
	}
	unix.Wait4(pid, nil, 0, nil)
	if err := s.Delete(ctx, "ocirt-spawner-again"); err != nil {
		t.Fatal(err)
	}
}
