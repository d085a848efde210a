package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
)

// TestPodman drives the built binary through podman (conmon), as users do:
// run --rm, an interactive -it run under a pty, and exec into a detached
// container. The image is imported from a busybox tarball: no network.
func TestPodman(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "podman", "script")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "estiba-runtime")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	conf := filepath.Join(dir, "containers.conf")
	// The host's hard NOFILE limit and missing CAP_SYS_RESOURCE make
	// podman's default ulimits fail (see PEERS.md).
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\n"), 0o644)
	env := append(os.Environ(), "CONTAINERS_CONF="+conf)
	image := fmt.Sprintf("localhost/estiba-runtime-test:%d", time.Now().UnixNano())
	podman := func(args ...string) (string, error) {
		cmd := exec.Command("podman", append([]string{"--runtime", bin}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// podman's default network creates the cni-podman0 bridge on first
	// use and keeps it: remove it again if this test was that first use.
	if _, err := net.InterfaceByName("cni-podman0"); err != nil {
		t.Cleanup(func() { exec.Command("ip", "link", "del", "cni-podman0").Run() })
	}
	tarball := busyboxTar(t, dir)
	if out, err := podman("import", tarball, image); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	t.Cleanup(func() { podman("rmi", "-f", image) })

	out, err := podman("run", "--rm", image, "sh", "-c", "echo hello $(id -u)")
	if err != nil || !strings.Contains(out, "hello 0") {
		t.Fatalf("run --rm: %v\n%s", err, out)
	}

	// An -it run of a container that exits at once sometimes shows no
	// output at all, with exit status 0: 3 in 20 runs with this runtime
	// and 3 in 30 with Debian's runc, so the loss is in podman's attach
	// (conmon 2.1.6), not in the runtime. With the container alive 0.3 s
	// after its output, 0 in 30 with either; a retry covers the rest.
	cmdline := fmt.Sprintf("podman --runtime %s run --rm -it %s sh -c 'tty; echo interactive-ok; sleep 0.3'", bin, image)
	for try := 1; ; try++ {
		sc := exec.Command("script", "-qec", cmdline, "/dev/null")
		sc.Env = env
		b, err := sc.CombinedOutput()
		if err == nil && strings.Contains(string(b), "/dev/pts/") && strings.Contains(string(b), "interactive-ok") {
			break
		}
		if try == 3 || err != nil {
			t.Fatalf("run -it (try %d): %v\n%s", try, err, b)
		}
		t.Logf("run -it (try %d) printed nothing of the container's: %q", try, b)
	}

	name := fmt.Sprintf("estiba-rt-test-%d", os.Getpid())
	if out, err := podman("run", "-d", "--name", name, image, "sleep", "100"); err != nil {
		t.Fatalf("run -d: %v\n%s", err, out)
	}
	t.Cleanup(func() { podman("rm", "-f", "-t", "0", name) })
	out, err = podman("exec", name, "sh", "-c", "echo exec-ok $$")
	if err != nil || !strings.Contains(out, "exec-ok") {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	if out, err := podman("rm", "-f", "-t", "0", name); err != nil {
		t.Fatalf("rm -f: %v\n%s", err, out)
	}
}

// busyboxTar packs a rootfs of static busybox and its applet links.
func busyboxTar(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox")
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755)
	for _, a := range []string{"sh", "echo", "id", "sleep", "tty", "true"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	for _, d := range []string{"proc", "sys", "dev", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	return tarball
}
