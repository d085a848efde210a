// Package security holds black-box regression tests, one per container
// escape class, that drive the estiba-runtime binary (runc's command line)
// on hostile bundles built from /bin/busybox in temp dirs. They need root
// and a built binary: `make build && go test ./tests/security`.
package security

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/estiba/estiba/internal/testutil"
)

// busybox is the static busybox the bundles are built from.
const busybox = "/bin/busybox"

// runtimeBinary finds estiba-runtime: $ESTIBA_RUNTIME, else bin/ at the
// repository root (go test runs in the package directory).
func runtimeBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("ESTIBA_RUNTIME")
	if p == "" {
		p = "../../bin/estiba-runtime"
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatalf("runtime path %q: %v", p, err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("estiba-runtime not found at %s (run `make build` at the repo root, or set ESTIBA_RUNTIME): %v", abs, err)
	}
	return abs
}

// env is one test's world: the runtime binary, a private state root, and
// the leak checks registered for the container id.
type env struct {
	t       *testing.T
	bin     string
	root    string
	id      string
	bundle  string
	rootfs  string
	spec    *specs.Spec
	binHash [32]byte
}

var unsafeID = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// newEnv builds a busybox bundle whose spec comes from `estiba-runtime
// spec` (so the defaults under test are the runtime's own), with terminal
// off and args replaced. It registers checks that, when the test ends, no
// mount, cgroup, state directory or container process remains and the
// runtime binary is unchanged.
func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	e := &env{t: t, bin: runtimeBinary(t)}
	e.binHash = hashFile(t, e.bin)
	name := strings.ToLower(unsafeID.ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	e.id = fmt.Sprintf("secqa-%s-%d", strings.Trim(name, "-"), time.Now().UnixNano()%1e6)
	base := t.TempDir()
	e.root = filepath.Join(base, "state")
	e.bundle = filepath.Join(base, "bundle")
	e.rootfs = filepath.Join(e.bundle, "rootfs")
	buildRootfs(t, e.rootfs)
	e.run(nil, "spec", "--bundle", e.bundle)
	e.spec = readSpec(t, filepath.Join(e.bundle, "config.json"))
	e.spec.Process.Terminal = false
	e.spec.Process.Args = args
	e.spec.Process.Env = append(e.spec.Process.Env, "SECQA="+e.id)

	checkNoNewMounts(t, base, e.id)
	testutil.CheckNoCgroups(t, "/sys/fs/cgroup", e.id)
	t.Cleanup(e.checkLeftovers)
	return e
}

// checkLeftovers force-deletes the container (so one failure does not leak
// into the next test) after noting whether it was still there, then checks
// processes and the binary.
func (e *env) checkLeftovers() {
	t := e.t
	if _, err := os.Stat(filepath.Join(e.root, e.id)); err == nil {
		t.Errorf("state directory %s left behind", filepath.Join(e.root, e.id))
		_, _ = e.try(nil, "delete", "--force", e.id)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := processesWithEnv("SECQA=" + e.id)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("container processes left behind: %v", pids)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if hashFile(t, e.bin) != e.binHash {
		t.Errorf("CVE-2019-5736 class: the runtime binary %s was modified", e.bin)
	}
}

// checkNoNewMounts is testutil.CheckNoNewMounts narrowed to this test's
// mounts (under its temp dir or naming its id): other work on a shared host
// mounts and unmounts concurrently.
func checkNoNewMounts(t *testing.T, base, id string) {
	before := testutil.Mounts(t)
	t.Cleanup(func() {
		for m := range testutil.Mounts(t) {
			if !before[m] && (strings.HasPrefix(m, base) || strings.Contains(m, id)) {
				t.Errorf("mount leaked: %s", m)
			}
		}
	})
}

func buildRootfs(t testing.TB, rootfs string) {
	t.Helper()
	for _, d := range []string{"bin", "proc", "dev", "dev/pts", "sys", "tmp", "etc", "mnt"} {
		mkdir(t, filepath.Join(rootfs, d))
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatalf("read %s (install busybox-static): %v", busybox, err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "ls", "echo", "sleep", "readlink", "grep", "true", "mkdir", "touch", "pwd", "test", "stat", "head", "sed", "sort", "wc", "timeout"} {
		symlink(t, "busybox", filepath.Join(rootfs, "bin", a))
	}
}

func (e *env) writeSpec() {
	e.t.Helper()
	b, err := json.MarshalIndent(e.spec, "", "\t")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// result is one runtime invocation's outcome.
type result struct {
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("err=%v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
}

// try runs estiba-runtime --root <root> args... with stdin from in (nil:
// /dev/null) and a 30 s bound.
func (e *env) try(in io.Reader, args ...string) (result, error) {
	return e.tryWith(in, nil, args...)
}

// tryFiles is try passing extra as fds 3, 4, ... (for --preserve-fds).
func (e *env) tryFiles(extra []*os.File, args ...string) (result, error) {
	return e.tryWith(nil, extra, args...)
}

func (e *env) tryWith(in io.Reader, extra []*os.File, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append([]string{"--root", e.root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &out, &errb
	cmd.ExtraFiles = extra
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out: %w", ctx.Err())
	}
	return result{out.String(), errb.String(), err}, err
}

// run is try that fails the test on error.
func (e *env) run(in io.Reader, args ...string) string {
	e.t.Helper()
	r, err := e.try(in, args...)
	if err != nil {
		e.t.Fatalf("estiba-runtime %v: %s", args, r)
	}
	return r.stdout
}

// runContainer writes the spec and runs the container to completion.
func (e *env) runContainer(extra ...string) (result, error) {
	e.t.Helper()
	e.writeSpec()
	return e.try(nil, append(append([]string{"run", "--bundle", e.bundle}, extra...), e.id)...)
}

// create writes the spec and creates the container. The container's
// stdio are files (create.out, create.err in the bundle's parent): a pipe
// would keep create's output open for as long as the container runs.
func (e *env) create() {
	e.t.Helper()
	e.writeSpec()
	dir := filepath.Dir(e.bundle)
	out, err := os.Create(filepath.Join(dir, "create.out"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "create.err"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer errf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "--root", e.root, "create", "--bundle", e.bundle, e.id)
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(errf.Name())
		e.t.Fatalf("estiba-runtime create: %v: %s", err, msg)
	}
}

// addTmpfs mounts a writable tmpfs at dest (the default rootfs is
// read-only).
func (e *env) addTmpfs(dest string) {
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}})
}

// addOut bind-mounts a fresh host directory at /out, where the container
// writes its findings; it returns the host directory.
func (e *env) addOut() string {
	dir := filepath.Join(filepath.Dir(e.bundle), "out")
	mkdir(e.t, dir)
	mkdir(e.t, filepath.Join(e.rootfs, "out"))
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
	return dir
}

// delete force-deletes the container.
func (e *env) delete() {
	e.t.Helper()
	e.run(nil, "delete", "--force", e.id)
}

// exec runs args in the container; flags go before the id.
func (e *env) exec(args ...string) (result, error) {
	return e.execFlags(nil, args...)
}

func (e *env) execFlags(flags []string, args ...string) (result, error) {
	argv := append(append(append([]string{"exec"}, flags...), e.id), args...)
	return e.try(nil, argv...)
}

func readSpec(t testing.TB, path string) *specs.Spec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return &s
}

// withoutMount drops the spec's mounts at dest (so the image's own /dev,
// say, is used).
func (e *env) withoutMount(dest string) {
	var ms []specs.Mount
	for _, m := range e.spec.Mounts {
		if m.Destination != dest && !strings.HasPrefix(m.Destination, dest+"/") {
			ms = append(ms, m)
		}
	}
	e.spec.Mounts = ms
}

// withoutMountExact drops only the mount at dest, keeping those below it.
func (e *env) withoutMountExact(dest string) {
	var ms []specs.Mount
	for _, m := range e.spec.Mounts {
		if m.Destination != dest {
			ms = append(ms, m)
		}
	}
	e.spec.Mounts = ms
}

func hashFile(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("hash %s: %v", path, err)
	}
	return sha256.Sum256(b)
}

// processesWithEnv lists PIDs whose environment holds the entry kv: the
// container's processes carry SECQA=<id>.
func processesWithEnv(kv string) []string {
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	var pids []string
	for _, p := range envs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, s := range bytes.Split(b, []byte{0}) {
			if string(s) == kv {
				pids = append(pids, filepath.Base(filepath.Dir(p)))
				break
			}
		}
	}
	return pids
}

func mkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, p string) {
	t.Helper()
	_ = os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// listTree lists every path under dir (relative), to prove nothing was
// created outside the bundle.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// hostProcFile pins a host procfs file for the test: its value must be
// the same when the test ends; if not, the test fails and the file is
// restored so one escape does not damage the host for the next.
func hostProcFile(t *testing.T, path string) {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	t.Cleanup(func() {
		after, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s: %v", path, err)
			return
		}
		if !bytes.Equal(before, after) {
			t.Errorf("ESCAPE: host %s changed from %q to %q (restoring)", path, before, after)
			_ = os.WriteFile(path, before, 0o644)
		}
	})
}

func specDevice(path string, major, minor int64, mode *os.FileMode) specs.LinuxDevice {
	return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: mode}
}
