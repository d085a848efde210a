// Package enginev2 drives the whole engine — `estiba daemon` and the estiba
// CLI — on a cgroup v2-only host: the v2vm lane (tests/v2vm/run-tests.sh)
// runs this package's static test binary in a qemu VM with bin/estiba and
// bin/estibad shipped in V2VM_EXTRA. Limits are read back from inside the containers,
// published ports are dialled from the VM's 127.0.0.1, and nothing of the
// engine's may be left in the cgroup tree or the link list. On a hybrid or
// v1 host it skips: the engine's own tests cover those.
package enginev2

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
)

const cgroupRoot = "/sys/fs/cgroup"

func requireV2(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		t.Skip("needs a cgroup v2 (unified) host: runs in the v2vm lane (tests/v2vm/run-tests.sh)")
	}
}

// estibaBinary finds bin/estiba: $ESTIBA_BIN, the repository's bin/, or the
// VM share's extra/ (the lane runs this binary in /mnt/share/pkg/<name>).
func estibaBinary(t testing.TB) string {
	t.Helper()
	cands := []string{"../../bin/estiba", "../../extra/estiba"}
	if p := os.Getenv("ESTIBA_BIN"); p != "" {
		cands = []string{p}
	}
	for _, p := range cands {
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
	}
	t.Fatalf("estiba not found in %v: run `make build` (the VM lane needs V2VM_EXTRA with bin/estiba and bin/estibad) or set ESTIBA_BIN", cands)
	return ""
}

type daemon struct {
	t                 *testing.T
	bin, sock         string
	dataRoot, exeRoot string
	cmd               *exec.Cmd
	log               *bytes.Buffer
}

func (d *daemon) start() {
	d.t.Helper()
	d.log = &bytes.Buffer{}
	d.cmd = exec.Command(d.bin, "daemon", "-H", "unix://"+d.sock, "--data-root", d.dataRoot,
		"--exec-root", d.exeRoot, "--config-file", "/dev/null")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := d.try("version"); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Fatalf("daemon did not answer: %s", d.log)
}

// stop ends the daemon; hard is kill -9, the crash the engine must survive.
func (d *daemon) stop(hard bool) {
	if d.cmd == nil {
		return
	}
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	_ = d.cmd.Process.Signal(sig)
	_ = d.cmd.Wait()
	d.cmd = nil
}

func (d *daemon) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(os.Environ(), "ESTIBA_HOST=unix://"+d.sock)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("estiba %v: %w: %s%s", args, err, out.String(), errb.String())
	}
	return out.String(), nil
}

func (d *daemon) run(args ...string) string {
	d.t.Helper()
	out, err := d.try(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// busyboxTar is a one-binary image: the host's (or the VM's) static busybox.
func busyboxTar(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs a static /bin/busybox: %v", err)
	}
	p := filepath.Join(t.TempDir(), "bb.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		add(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	}
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bb)
	for _, a := range []string{"sh", "cat", "sleep", "nc", "id", "ls", "ip", "echo", "true"} {
		add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0:root:/:/bin/sh\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func newDaemon(t *testing.T) *daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "estiba-enginev2-")
	if err != nil {
		t.Fatal(err)
	}
	// userns=auto containers run as unprivileged host ids: like
	// /var/lib/estiba, the path to the data root must be traversable.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, bin: estibaBinary(t), sock: filepath.Join(dir, "estiba.sock"),
		dataRoot: filepath.Join(dir, "data"), exeRoot: filepath.Join(dir, "run")}
	t.Cleanup(func() {
		if d.cmd == nil {
			d.start()
		}
		if ids, err := d.try("ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
			_, _ = d.try(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		d.stop(false)
		// The host-wide monitor outlives the daemon by design (it holds the
		// containers across daemon restarts); with no container left, stop it.
		if b, err := os.ReadFile(filepath.Join(d.exeRoot, "monitor.pid")); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log)
		}
		time.Sleep(200 * time.Millisecond)
		_ = os.RemoveAll(dir)
	})
	d.start()
	d.run("import", busyboxTar(t), "v2/bb")
	return d
}

// TestEngineV2 runs containers through the daemon on a v2-only host and reads
// each limit back from inside, where the container sees its own cgroup (a
// private cgroup namespace) as /sys/fs/cgroup.
func TestEngineV2(t *testing.T) {
	testutil.RequiresRoot(t)
	requireV2(t)
	testutil.CheckNoNewMounts(t)
	d := newDaemon(t)

	cases := []struct {
		name  string
		flags []string
		file  string
		want  string
	}{
		{"memory", []string{"--memory", "64m"}, "memory.max", "67108864"},
		{"memory-swap", []string{"--memory", "64m", "--memory-swap", "96m"}, "memory.swap.max", "33554432"},
		{"pids", []string{"--pids-limit", "20"}, "pids.max", "20"},
		{"default-pids", nil, "pids.max", "4096"},
		{"cpus", []string{"--cpus", "0.5"}, "cpu.max", "50000 100000"},
		{"cpuset", []string{"--cpuset-cpus", "0"}, "cpuset.cpus", "0"},
		{"cpu-shares", []string{"--cpu-shares", "512"}, "cpu.weight", "20"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tc.flags...), "v2/bb", "cat", "/sys/fs/cgroup/"+tc.file)
			if got := strings.TrimSpace(d.run(args...)); got != tc.want {
				t.Fatalf("%s inside: got %q, want %q", tc.file, got, tc.want)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		out := d.run("run", "--rm", "v2/bb", "sh", "-c", "cat /proc/self/cgroup /proc/self/uid_map; id -u")
		f := strings.Fields(out)
		// A private cgroup namespace ("0::/") and a user namespace whose
		// root is not the host's (userns=auto).
		if len(f) < 5 || f[0] != "0::/" || f[1] != "0" || f[2] == "0" || f[4] != "0" {
			t.Fatalf("want 0::/, a uid map of 0 to a non-zero host id, and uid 0; got %q", out)
		}
	})

	t.Run("freeze", func(t *testing.T) {
		id := strings.TrimSpace(d.run("run", "-d", "v2/bb", "sleep", "300"))
		defer d.run("rm", "-f", id)
		d.run("pause", id)
		events := cgroupFile(t, id, "cgroup.events")
		if !strings.Contains(events, "frozen 1") {
			t.Fatalf("paused: cgroup.events = %q, want frozen 1", events)
		}
		d.run("unpause", id)
		if events := cgroupFile(t, id, "cgroup.events"); !strings.Contains(events, "frozen 0") {
			t.Fatalf("unpaused: cgroup.events = %q, want frozen 0", events)
		}
	})

	t.Run("published-port", func(t *testing.T) {
		id := strings.TrimSpace(d.run("run", "-d", "-p", "127.0.0.1:18080:80", "v2/bb",
			"nc", "-ll", "-p", "80", "-e", "echo", "hello-v2"))
		defer d.run("rm", "-f", id)
		got := dial(t, "127.0.0.1:18080")
		if !strings.Contains(got, "hello-v2") {
			t.Fatalf("through the published port: got %q", got)
		}
	})

	t.Run("daemon-kill9", func(t *testing.T) {
		id := strings.TrimSpace(d.run("run", "-d", "v2/bb", "sh", "-c", "sleep 2; exit 3"))
		d.stop(true)
		time.Sleep(3 * time.Second) // the container exits while the daemon is down
		d.start()
		out := strings.TrimSpace(d.run("wait", id))
		if out != "3" {
			t.Fatalf("exit recorded across the daemon's kill -9: got %q, want 3", out)
		}
		d.run("rm", id)
	})

	t.Run("no-leftovers", func(t *testing.T) {
		if ids := strings.TrimSpace(d.run("ps", "-aq")); ids != "" {
			t.Fatalf("containers left: %s", ids)
		}
		entries, _ := os.ReadDir(filepath.Join(cgroupRoot, "estiba"))
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("cgroup left: %s", filepath.Join(cgroupRoot, "estiba", e.Name()))
			}
		}
		links, _ := os.ReadDir("/sys/class/net")
		for _, l := range links {
			if strings.HasPrefix(l.Name(), "estv") || strings.HasPrefix(l.Name(), "esti") {
				t.Errorf("link left: %s", l.Name())
			}
		}
	})
}

func cgroupFile(t *testing.T, id, name string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(cgroupRoot, "estiba", id+"*", name))
	if len(matches) != 1 {
		t.Fatalf("cgroup of %s: found %v", id, matches)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dial(t *testing.T, addr string) string {
	t.Helper()
	var last error
	for i := 0; i < 50; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			b, _ := io.ReadAll(c)
			c.Close()
			if len(b) > 0 {
				return string(b)
			}
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dial %s: %v", addr, last)
	return ""
}
