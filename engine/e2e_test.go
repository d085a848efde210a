package engine_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
)

// e2e drives the real estiba binary (daemon, monitor, in-process OCI
// runtime, image layer) and the stock docker CLI on a temp socket and data
// root.
type e2e struct {
	t    *testing.T
	bin  string
	work string
	host string
}

// The binaries under test, built once per test binary (buildEstiba) into
// binDir, which TestMain removes.
var (
	binOnce sync.Once
	binDir  string
	binSkip string // why they cannot be built here
	binErr  string
)

func buildEstiba(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			binSkip = fmt.Sprintf("go toolchain needed to build estiba: %v", err)
			return
		}
		if binDir, err = os.MkdirTemp("", "estiba-e2e-bin-"); err != nil {
			binErr = err.Error()
			return
		}
		// What a user installs (make build): the CLI execs the daemon
		// binary (estibad) from its own directory, and the daemon runs
		// container inits from estiba-init-stub and estiba-init beside it.
		cmd := exec.Command("make", "-s", "build", "BIN="+binDir)
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Sprintf("make build: %v\n%s", err, out)
		}
	})
	if binSkip != "" {
		t.Skip(binSkip)
	}
	if binErr != "" {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "estiba")
}

// busyboxTar writes a rootfs tarball made of Debian's busybox-static.
func busyboxTar(t *testing.T, dir string) string {
	t.Helper()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(rootfs, "bin/busybox"), b, 0o755)
	for _, a := range []string{"sh", "echo", "cat", "sleep", "id", "hostname", "ps", "true", "grep", "touch",
		"env", "pwd", "mkdir", "nproc", "tty", "test"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\n"), 0o644)
	tarball := filepath.Join(dir, "rootfs.tar")
	if out, err := exec.Command("tar", "--numeric-owner", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	return tarball
}

func startE2E(t *testing.T) *e2e {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "go", "tar", "busybox")
	work := shortTempDir(t)
	// Only mounts under our work dir: other suites share this host.
	t.Cleanup(func() {
		for m := range testutil.Mounts(t) {
			if strings.HasPrefix(m, work) {
				t.Errorf("mount leaked: %s", m)
			}
		}
	})
	// Containers run as host ids of their own: they must traverse here.
	os.Chmod(work, 0o711)
	e := &e2e{t: t, bin: buildEstiba(t), work: work, host: "unix://" + filepath.Join(work, "sock")}
	run := filepath.Join(work, "run")
	d := exec.Command(e.bin, "daemon", "-H", e.host, "--data-root", filepath.Join(work, "data"), "--exec-root", run, "--config-file", "/dev/null")
	logf, _ := os.Create(filepath.Join(work, "daemon.log"))
	d.Stderr = logf
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		out, _, _ := e.estiba("ps", "-aq")
		for _, id := range strings.Fields(out) {
			e.estiba("rm", "-f", id)
		}
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
		if b, err := os.ReadFile(filepath.Join(run, "monitor.pid")); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		// The network layer keeps its bridges and nftables table when
		// the daemon stops (see teardownNetworks): a test whose daemon
		// opened it (-p, --network, the docker CLI's default network)
		// removes them, or they outlive it on the host.
		dir := filepath.Join(work, "data", "network")
		if _, err := os.Stat(dir); err == nil {
			teardownNetworks(t, dir)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(work, "daemon.log"))
			t.Logf("daemon log:\n%s", b)
		}
	})
	waitSocket(t, filepath.Join(work, "sock"))
	return e
}

func (e *e2e) cmd(name string, args ...string) (string, string, int) {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"ESTIBA_HOST=" + e.host, "DOCKER_HOST=" + e.host, "HOME=" + e.work, "PATH=" + os.Getenv("PATH")}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

func (e *e2e) estiba(args ...string) (string, string, int) { return e.cmd(e.bin, args...) }

type step struct {
	tool string // "estiba" or "docker"
	args []string
	want string // substring of stdout+stderr
	code int
}

func (e *e2e) steps(steps []step) {
	e.t.Helper()
	for _, s := range steps {
		bin := e.bin
		if s.tool == "docker" {
			bin = "docker"
		}
		out, errs, code := e.cmd(bin, s.args...)
		if code != s.code || !strings.Contains(out+errs, s.want) {
			e.t.Errorf("%s %s: exit %d (want %d), output %q (want %q)", s.tool, strings.Join(s.args, " "), code, s.code, out+errs, s.want)
		}
	}
}

func TestE2EBusybox(t *testing.T) {
	e := startE2E(t)
	tarball := busyboxTar(t, e.work)
	e.steps([]step{
		{"estiba", []string{"import", tarball, "e2e/bb"}, "sha256:", 0},
		{"estiba", []string{"images"}, "e2e/bb", 0},
		{"estiba", []string{"run", "--rm", "e2e/bb", "echo", "hello"}, "hello", 0},
		{"estiba", []string{"run", "--rm", "e2e/bb", "sh", "-c", "exit 3"}, "", 3},
		// Secure defaults, seen from inside.
		{"estiba", []string{"run", "--rm", "e2e/bb", "grep", "-E", "NoNewPrivs|Seccomp:", "/proc/self/status"}, "NoNewPrivs:\t1", 0},
		{"estiba", []string{"run", "--rm", "e2e/bb", "cat", "/proc/self/uid_map"}, "65536", 0},
		{"estiba", []string{"run", "--rm", "--init", "e2e/bb", "ps"}, "estiba-init", 0},
		// exec into a default (--userns=auto) container.
		{"estiba", []string{"run", "-d", "--name", "u1", "e2e/bb", "sleep", "60"}, "", 0},
		{"estiba", []string{"exec", "u1", "id", "-u"}, "0", 0},
		{"estiba", []string{"exec", "u1", "cat", "/proc/self/uid_map"}, "65536", 0},
		{"estiba", []string{"rm", "-f", "u1"}, "u1", 0},
		// Health checks exec into it too.
		{"estiba", []string{"run", "-d", "--name", "h1", "--health-cmd", "true", "--health-interval", "100ms", "e2e/bb", "sleep", "60"}, "", 0},
		{"estiba", []string{"exec", "h1", "sleep", "1"}, "", 0},
		{"estiba", []string{"inspect", "h1"}, `"Status": "healthy"`, 0},
		{"estiba", []string{"rm", "-f", "h1"}, "h1", 0},
		{"estiba", []string{"run", "--rm", "--read-only", "--userns", "host", "e2e/bb", "touch", "/x"}, "Read-only file system", 1},
		// -p works (network layer), but would leave the host's bridge and
		// nftables table behind this test: see the manual check in the
		// engine report. -P is refused clearly.
		{"estiba", []string{"run", "--rm", "-P", "e2e/bb", "true"}, "not supported", 125},
	})
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	e.steps([]step{
		{"docker", []string{"run", "--rm", "e2e/bb", "echo", "via docker"}, "via docker", 0},
		{"docker", []string{"run", "-d", "--name", "s1", "--userns", "host", "e2e/bb", "sh", "-c", "echo up; exec sleep 60"}, "", 0},
		{"docker", []string{"ps"}, "s1", 0},
		{"docker", []string{"exec", "s1", "echo", "exec-ok"}, "exec-ok", 0},
		{"docker", []string{"top", "s1"}, "sleep 60", 0},
		{"docker", []string{"pause", "s1"}, "s1", 0},
		{"docker", []string{"unpause", "s1"}, "s1", 0},
		{"docker", []string{"stop", "-t", "1", "s1"}, "s1", 0},
		{"docker", []string{"logs", "s1"}, "up", 0},
		{"docker", []string{"inspect", "-f", "{{.State.ExitCode}}", "s1"}, fmt.Sprint(137), 0},
		{"docker", []string{"rm", "s1"}, "s1", 0},
		{"docker", []string{"run", "-d", "--name", "s2", "e2e/bb", "sleep", "60"}, "", 0},
		{"docker", []string{"exec", "s2", "cat", "/proc/self/uid_map"}, "65536", 0},
		{"docker", []string{"rm", "-f", "s2"}, "s2", 0},
		{"docker", []string{"rmi", "e2e/bb"}, "Deleted", 0},
	})
}
