package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/estiba/estiba/internal/testutil"
)

func TestMappedHostID(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 5000, Size: 1}}
	for _, tc := range []struct {
		id   uint32
		host int
		ok   bool
	}{
		{0, 100000, true},
		{999, 100999, true},
		{1000, 5000, true},
		{1001, 0, false},
	} {
		host, ok := mappedHostID(m, tc.id)
		if host != tc.host || ok != tc.ok {
			t.Errorf("mappedHostID(%d) = %d, %v; want %d, %v", tc.id, host, ok, tc.host, tc.ok)
		}
	}
	if _, ok := mappedHostID(nil, 0); ok {
		t.Error("empty mapping maps 0")
	}
}

func TestFindNsenter(t *testing.T) {
	dir := t.TempDir()
	util := filepath.Join(dir, "nsenter")
	bb := filepath.Join(dir, "busybox")
	link := filepath.Join(dir, "bb-nsenter")
	for _, p := range []string{util, bb} {
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("busybox", link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name    string
		paths   []string
		want    string
		busybox bool
	}{
		{"util-linux", []string{missing, util}, util, false},
		{"busybox link", []string{link, util}, bb, true},
		{"none", []string{missing}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, busybox, err := findNsenter(tc.paths)
			if tc.want == "" {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("err %v, want ErrUnsupported", err)
				}
				return
			}
			if err != nil || got != tc.want || busybox != tc.busybox {
				t.Fatalf("= %q, %v, %v; want %q, %v", got, busybox, err, tc.want, tc.busybox)
			}
		})
	}
}

// A process exec'd from execOnlyCopy by a uid that cannot read it is not
// dumpable: another process of the same uid cannot read its /proc files,
// while it can those of the same binary exec'd normally.
func TestExecOnlyCopyNotDumpable(t *testing.T) {
	testutil.RequiresRoot(t)
	cp, release, err := execOnlyCopy("/bin/busybox", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 100000, Gid: 100000}}
	for _, tc := range []struct {
		path     string
		readable bool
	}{
		{"/bin/busybox", true},
		{cp, false},
	} {
		sleeper := &exec.Cmd{Path: tc.path, Args: []string{"sleep", "10"}, SysProcAttr: cred}
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		// Exec done once /proc/<pid>/exe no longer is this test.
		self, _ := os.Readlink("/proc/self/exe")
		for i := 0; i < 200; i++ {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", sleeper.Process.Pid)); exe != self {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		probe := exec.Command("/bin/busybox", "cat", fmt.Sprintf("/proc/%d/environ", sleeper.Process.Pid))
		probe.SysProcAttr = cred
		out, err := probe.CombinedOutput()
		sleeper.Process.Kill()
		sleeper.Wait()
		if readable := err == nil; readable != tc.readable {
			t.Errorf("%s: /proc/<pid>/environ readable by the same uid: %v (%v: %s), want %v", tc.path, readable, err, out, tc.readable)
		}
	}
}
