// Package runtimev2 drives the estiba-runtime binary on a cgroup v2 host
// (the v2vm lane: tests/v2vm/run-tests.sh boots a v2-only kernel and runs
// this package's static test binary there, with bin/estiba-runtime shipped
// in V2VM_EXTRA). On a hybrid host it skips: the v1 path is covered by the
// runtime's own tests.
package runtimev2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/testutil"
)

const cgroupRoot = "/sys/fs/cgroup"

// runtimeBinary finds estiba-runtime: $ESTIBA_RUNTIME, the repository's
// bin/ (go test from the repo), or the VM share's extra/ (the v2vm lane
// runs this binary in /mnt/share/pkg/<name>).
func runtimeBinary(t testing.TB) string {
	t.Helper()
	cands := []string{"../../bin/estiba-runtime", "../../extra/estiba-runtime"}
	if p := os.Getenv("ESTIBA_RUNTIME"); p != "" {
		cands = []string{p}
	}
	for _, p := range cands {
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
	}
	t.Fatalf("estiba-runtime not found in %v: run `make build` (the VM lane needs V2VM_EXTRA=bin/estiba-runtime) or set ESTIBA_RUNTIME", cands)
	return ""
}

func requireV2(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		t.Skip("needs a cgroup v2 (unified) host: runs in the v2vm lane (tests/v2vm/run-tests.sh)")
	}
}

type rt struct {
	t                *testing.T
	bin, root, id    string
	bundle, stdioDir string
}

func (r *rt) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, append([]string{"--root", r.root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("estiba-runtime %v: %w: %s", args, err, errb.String())
	}
	return out.String(), nil
}

func (r *rt) run(args ...string) string {
	r.t.Helper()
	out, err := r.try(args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// create starts the container's init with its stdio on files: a pipe would
// hold create's output open for the container's lifetime.
func (r *rt) create() {
	r.t.Helper()
	out, err := os.Create(filepath.Join(r.stdioDir, "create.log"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(r.bin, "--root", r.root, "create", "--bundle", r.bundle, r.id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		r.t.Fatalf("create: %v: %s", err, b)
	}
}

func (r *rt) status() string {
	r.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(r.run("state", r.id)), &st); err != nil {
		r.t.Fatalf("decode state: %v", err)
	}
	return string(st.Status)
}

func (r *rt) waitStatus(want string) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.status() != want {
		if time.Now().After(deadline) {
			r.t.Fatalf("status %q, want %q", r.status(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newBundle builds a busybox bundle from `estiba-runtime spec` and lets
// edit change its spec.
func newBundle(t *testing.T, edit func(*specs.Spec)) *rt {
	t.Helper()
	base := t.TempDir()
	r := &rt{t: t, bin: runtimeBinary(t), root: filepath.Join(base, "state"), bundle: filepath.Join(base, "bundle"), stdioDir: base,
		id: fmt.Sprintf("rtv2-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano()%1e6)}
	rootfs := filepath.Join(r.bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("read /bin/busybox: %v", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "sleep", "head", "echo", "true"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	r.run("spec", "--bundle", r.bundle)
	b, err := os.ReadFile(filepath.Join(r.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Terminal = false
	edit(&s)
	if b, err = json.Marshal(&s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.CheckNoNewMounts(t)
	testutil.CheckNoCgroups(t, cgroupRoot, r.id)
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(r.root, r.id)); err == nil {
			t.Errorf("state directory of %s left behind", r.id)
			_, _ = r.try("delete", "--force", r.id)
		}
	})
	return r
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

// limits is the resources under test: memory, pids, cpu, and a device
// cgroup denying all but the defaults and /dev/full (c 1:7, created by the
// runtime from linux.devices). The denied node, /dev/qamem (c 1:1), is
// made in the rootfs by the test (mknodRootfs): the runtime allows every
// linux.devices entry, so it cannot be listed there.
func limits(s *specs.Spec) {
	s.Process.Args = []string{"sleep", "300"}
	s.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(32)},
		CPU:    &specs.LinuxCPU{Quota: i64(50000), Period: u64(100000)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rw"},
		},
	}
	mode := os.FileMode(0o666)
	for _, d := range []struct {
		path  string
		minor int64
	}{{"/dev/qafull", 7}} {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: d.path, Type: "c", Major: 1, Minor: d.minor, FileMode: &mode})
	}
}

// TestLifecycleV2: limits are visible from inside (cgroup namespace: the
// container's cgroup is its /sys/fs/cgroup), devices rules hold, pause
// freezes, kill and delete leave no cgroup.
func TestLifecycleV2(t *testing.T) {
	testutil.RequiresRoot(t)
	requireV2(t)
	r := newBundle(t, limits)
	// A node for /dev/mem in the image: the device cgroup must deny it
	// (EPERM; a nodev mount would give EACCES).
	if err := unix.Mknod(filepath.Join(r.bundle, "rootfs/qamem"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 1))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	r.create()
	r.run("start", r.id)
	r.waitStatus("running")

	out := r.run("exec", r.id, "sh", "-c", `echo "mem=$(cat /sys/fs/cgroup/memory.max) pids=$(cat /sys/fs/cgroup/pids.max) cpu=$(cat /sys/fs/cgroup/cpu.max) cg=$(cat /proc/self/cgroup)"`)
	for _, want := range []string{"mem=67108864 ", "pids=32 ", "cpu=50000 100000 ", "cg=0::/"} {
		if !strings.Contains(out, want) {
			t.Errorf("inside the container: want %q in %q", want, out)
		}
	}
	if _, err := r.try("exec", r.id, "head", "-c", "1", "/dev/qafull"); err != nil {
		t.Errorf("allowed device c 1:7 not readable: %v", err)
	}
	if _, err := r.try("exec", r.id, "head", "-c", "1", "/qamem"); err == nil {
		t.Error("denied device c 1:1 (/dev/mem) readable")
	} else if !strings.Contains(err.Error(), "not permitted") {
		t.Errorf("denied device: want EPERM, got %v", err)
	}

	cgs := testutil.FindCgroups(cgroupRoot, r.id, 4)
	if len(cgs) != 1 {
		t.Fatalf("want one cgroup named %s, got %v", r.id, cgs)
	}
	r.run("pause", r.id)
	if st := r.status(); st != "paused" {
		t.Errorf("after pause: status %q", st)
	}
	if ev, _ := os.ReadFile(filepath.Join(cgs[0], "cgroup.events")); !strings.Contains(string(ev), "frozen 1") {
		t.Errorf("after pause: cgroup.events %q, want frozen 1", ev)
	}
	r.run("resume", r.id)
	if st := r.status(); st != "running" {
		t.Errorf("after resume: status %q", st)
	}
	if _, err := r.try("exec", r.id, "true"); err != nil {
		t.Errorf("exec after resume: %v", err)
	}

	r.run("kill", r.id, "KILL")
	r.waitStatus("stopped")
	r.run("delete", r.id)
	if _, err := os.Stat(cgs[0]); err == nil {
		t.Errorf("cgroup %s left after delete", cgs[0])
	}
}

// TestPidsLimitV2: a fork loop stops at pids.max; read from the host, as
// an exec would need a pid of its own.
func TestPidsLimitV2(t *testing.T) {
	testutil.RequiresRoot(t)
	requireV2(t)
	r := newBundle(t, func(s *specs.Spec) {
		limits(s)
		s.Process.Args = []string{"sh", "-c", `i=0; while [ $i -lt 40 ]; do (sleep 300 &) 2>/dev/null; i=$((i+1)); done; echo done > /tmp/forked; sleep 300`}
	})
	r.create()
	r.run("start", r.id)
	cgs := testutil.FindCgroups(cgroupRoot, r.id, 4)
	if len(cgs) != 1 {
		t.Fatalf("want one cgroup named %s, got %v", r.id, cgs)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ev, _ := os.ReadFile(filepath.Join(cgs[0], "pids.events"))
		cur, _ := os.ReadFile(filepath.Join(cgs[0], "pids.current"))
		if !strings.Contains(string(ev), "max 0") {
			// The loop's subshells exit right after forking their sleep, so
			// the count hovers just below the limit; it must never pass it.
			if n, err := strconv.Atoi(strings.TrimSpace(string(cur))); err != nil || n > 32 || n < 28 {
				t.Errorf("pids limit hit but pids.current = %q (limit 32)", cur)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("pids limit never hit: pids.current %q", cur)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.run("delete", "--force", r.id)
}
