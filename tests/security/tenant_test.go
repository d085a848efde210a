package security

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/network"
)

// The tests in this file are a hostile tenant of the engine: a real estiba
// daemon (bin/estiba) with its defaults (--userns=auto, default seccomp,
// capabilities, masked paths, pids limit, loopback-only network) runs
// containers of an image holding busybox and tenantprobe, and each probe
// attempts one class of escape or interference. A probe line "ESCAPE …"
// fails the test.

// tenantDaemon is one daemon on a private data root, exec root and socket.
type tenantDaemon struct {
	t       *testing.T
	bin     string
	work    string
	host    string
	cmd     *exec.Cmd
	image   string
	marker  string // a file only the image's root holds
	monitor int    // the monitor's host pid
	// table is the daemon's nftables table: one of its own, so that
	// another daemon on the host (a parallel test, a developer's engine)
	// rebuilding "inet estiba" cannot drop the rules under test.
	table string
}

// estibaBinary finds bin/estiba: $ESTIBA_BIN, else bin/ at the repository
// root.
func estibaBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("ESTIBA_BIN")
	if p == "" {
		p = "../../bin/estiba"
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("estiba not found at %s (run `make build` at the repo root, or set ESTIBA_BIN): %v", abs, err)
	}
	return abs
}

func startTenantDaemon(t *testing.T) *tenantDaemon {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "go", "tar")
	// unix socket paths are limited to 108 bytes: t.TempDir() can be long.
	work, err := os.MkdirTemp("", "hostile-")
	if err != nil {
		t.Fatal(err)
	}
	// Containers run as host ids of their own: they must traverse here.
	os.Chmod(work, 0o711)
	d := &tenantDaemon{t: t, bin: estibaBinary(t), work: work, host: "unix://" + filepath.Join(work, "s.sock"),
		image: "hostile/probe", marker: "/hostile-image-marker", table: fmt.Sprintf("estiba_tenant_%d", os.Getpid())}
	t.Cleanup(func() {
		d.stop()
		testutil.CheckNoMountsUnder(t, work)
		os.RemoveAll(work)
	})
	d.cmd = exec.Command(d.bin, "daemon", "-H", d.host, "--data-root", filepath.Join(work, "data"),
		"--exec-root", filepath.Join(work, "run"), "--config-file", "/dev/null", "--nft-table", d.table)
	logf, err := os.Create(filepath.Join(work, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", filepath.Join(work, "s.sock")); err == nil {
			c.Close()
			break
		}
		if i == 500 {
			t.Fatal("daemon socket never came up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.buildImage()
	// The monitor starts with the first container.
	d.must("run", "--rm", d.image, "true")
	b, err := os.ReadFile(filepath.Join(work, "run", "monitor.pid"))
	if err != nil {
		t.Fatalf("monitor pid: %v", err)
	}
	d.monitor, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	return d
}

// stop removes every container, stops the daemon and the monitor and, if
// the test failed, shows the daemon's log.
func (d *tenantDaemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	out, _, _ := d.estiba("ps", "-aq")
	if ids := strings.Fields(out); len(ids) > 0 {
		d.estiba(append([]string{"rm", "-f"}, ids...)...)
	}
	out, _, _ = d.estiba("network", "ls", "-q", "--filter", "name=hostile")
	for _, id := range strings.Fields(out) {
		d.estiba("network", "rm", id)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
	if d.monitor > 0 {
		syscall.Kill(d.monitor, syscall.SIGTERM)
		for i := 0; i < 250 && syscall.Kill(d.monitor, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The daemon keeps its host network state (the default bridge's
	// anchor, the nftables table) across restarts, as dockerd keeps
	// docker0; a test's daemon is gone for good, so its state goes too.
	if m, err := network.New(context.Background(), network.Config{Store: network.FileStore{Dir: filepath.Join(d.work, "data", "network")}, Table: d.table}); err != nil {
		d.t.Errorf("reopen network layer: %v", err)
	} else {
		if err := m.Teardown(context.Background()); err != nil {
			d.t.Errorf("network teardown: %v", err)
		}
		m.Close()
	}
	if d.t.Failed() {
		b, _ := os.ReadFile(filepath.Join(d.work, "daemon.log"))
		d.t.Logf("daemon log:\n%s", b)
	}
}

// buildImage imports a busybox image holding tenantprobe, a setuid-root
// copy of it, a non-root user and a marker file.
func (d *tenantDaemon) buildImage() {
	t := d.t
	rootfs := filepath.Join(d.work, "rootfs")
	buildRootfs(t, rootfs)
	for _, a := range []string{"ip", "nc", "unshare", "id", "ps", "kill"} {
		symlink(t, "busybox", filepath.Join(rootfs, "bin", a))
	}
	probe := filepath.Join(rootfs, "bin", "tenantprobe")
	build := exec.Command("go", "build", "-o", probe, "./tenantprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build tenantprobe: %v\n%s", err, out)
	}
	b, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "suidprobe"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(rootfs, "bin", "suidprobe"), 0o4755|os.ModeSetuid)
	capprobe := filepath.Join(rootfs, "bin", "capprobe")
	if err := os.WriteFile(capprobe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("setcap", "cap_setuid,cap_dac_override+ep", capprobe).CombinedOutput(); err != nil {
		t.Fatalf("setcap (libcap2-bin): %v %s", err, out)
	}
	os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\nuser:x:1000:\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, d.marker), []byte("image\n"), 0o644)
	tarball := filepath.Join(d.work, "rootfs.tar")
	if out, err := exec.Command("tar", "--numeric-owner", "--xattrs", "--xattrs-include=security.capability", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	d.must("import", tarball, d.image)
}

func (d *tenantDaemon) estiba(args ...string) (string, string, int) {
	cmd := exec.Command(d.bin, args...)
	cmd.Env = []string{"ESTIBA_HOST=" + d.host, "HOME=" + d.work, "PATH=" + os.Getenv("PATH")}
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

func (d *tenantDaemon) must(args ...string) string {
	d.t.Helper()
	out, errs, code := d.estiba(args...)
	if code != 0 {
		d.t.Fatalf("estiba %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
	}
	return strings.TrimSpace(out)
}

// probe runs `estiba run --rm [runArgs] IMAGE tenantprobe ARGS` and fails t
// for every ESCAPE line, or if the probe did not finish. It returns the
// probe's INFO values.
func (d *tenantDaemon) probe(t *testing.T, runArgs []string, args ...string) map[string]string {
	t.Helper()
	cmd := append(append(append([]string{"run", "--rm"}, runArgs...), d.image, "tenantprobe"), args...)
	out, errs, code := d.estiba(cmd...)
	return checkProbe(t, strings.Join(args, " "), out, errs, code)
}

func checkProbe(t *testing.T, what, out, errs string, code int) map[string]string {
	t.Helper()
	infos := map[string]string{}
	done := false
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "ESCAPE "):
			t.Errorf("probe %s: %s", what, l)
		case strings.HasPrefix(l, "INFO "):
			k, v, _ := strings.Cut(strings.TrimPrefix(l, "INFO "), " ")
			infos[k] = v
		case l == "DONE":
			done = true
		}
	}
	if !done || code != 0 {
		t.Errorf("probe %s did not finish: exit %d\nstdout:\n%s\nstderr:\n%s", what, code, out, errs)
	}
	if testing.Verbose() {
		t.Logf("probe %s:\n%s", what, out)
	}
	return infos
}

// TestTenantIsolation runs every in-container probe against one daemon,
// next to a victim container holding a secret, then checks the victim, the
// daemon and the monitor are unharmed.
func TestTenantIsolation(t *testing.T) {
	d := startTenantDaemon(t)
	secret := fmt.Sprintf("victim-secret-%d", time.Now().UnixNano())
	d.must("run", "-d", "--name", "victim", "-e", "SECRET="+secret, d.image, "sh", "-c", "echo "+secret+" > /dev/shm/victim-file; exec sleep 600")
	reversed := []rune(secret)
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	daemonPid := strconv.Itoa(d.cmd.Process.Pid)
	tests := []struct {
		name string
		run  []string // extra run flags (never weakening the defaults)
		args []string
	}{
		{"mount, umount, remount, pivot_root, fsopen", nil, []string{"mount"}},
		{"new namespaces, nested userns, clone3", nil, []string{"unshare"}},
		{"kernel keyring", nil, []string{"keyring"}},
		{"other containers' /proc entries", nil, []string{"procscan", string(reversed), "/dev/shm/victim-file"}},
		{"signal, trace, read the daemon and monitor", nil, []string{"hostpids", daemonPid, strconv.Itoa(d.monitor), strconv.Itoa(os.Getpid())}},
		{"/proc/sys, /sys, cgroup and sysrq writes, kcore reads", nil, []string{"writes"}},
		{"device nodes", nil, []string{"devices"}},
		{"chroot breakout", nil, []string{"chroot", d.marker}},
		{"unix sockets of the host", nil, []string{"sockets", filepath.Join(d.work, "s.sock"), filepath.Join(d.work, "run", "monitor.sock")}},
		{"clocks", nil, []string{"clock"}},
		{"kernel log", nil, []string{"kmsg"}},
		{"bpf, modules, perf, reboot, swap", nil, []string{"bpf"}},
		{"userfaultfd", nil, []string{"userfault"}},
		{"hard links to the /etc files", nil, []string{"hardlink"}},
		// A volume at /etc: the /etc files are the daemon's, bind-mounted.
		{"hard links to the daemon's /etc files", []string{"-v", "tenantetc:/etc"}, []string{"hardlink"}},
		{"setuid root binary with no_new_privs", []string{"-u", "1000"}, []string{"setuid", "/bin/suidprobe"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { d.probe(t, tc.run, tc.args...) })
	}
	t.Run("file capabilities with no_new_privs", func(t *testing.T) {
		out, errs, code := d.estiba("run", "--rm", "-u", "1000", d.image, "/bin/capprobe", "filecaps")
		checkProbe(t, "filecaps", out, errs, code)
	})
	t.Run("descriptors of init and exec", func(t *testing.T) {
		out, errs, code := d.estiba("run", "--rm", d.image, "sh", "-c", "tenantprobe fds $$; true")
		checkProbe(t, "fds (init)", out, errs, code)
		out, errs, code = d.estiba("exec", "victim", "sh", "-c", "tenantprobe fds $$ 1; true")
		checkProbe(t, "fds (exec)", out, errs, code)
	})
	t.Run("kill -1 inside a container", func(t *testing.T) { d.probe(t, nil, "killall") })
	t.Run("probes inside exec", func(t *testing.T) {
		for _, p := range [][]string{{"mount"}, {"unshare"}, {"writes"}, {"devices"}, {"keyring"}} {
			out, errs, code := d.estiba(append([]string{"exec", "victim", "tenantprobe"}, p...)...)
			checkProbe(t, "exec "+p[0], out, errs, code)
		}
	})
	// Whatever ran above, the victim, the daemon and the monitor live on.
	if got := d.must("inspect", "-f", "{{.State.Status}}", "victim"); got != "running" {
		t.Errorf("victim is %s after the probes", got)
	}
	if err := syscall.Kill(d.monitor, 0); err != nil {
		t.Errorf("monitor (pid %d) is gone: %v", d.monitor, err)
	}
	if got := d.must("exec", "victim", "cat", "/dev/shm/victim-file"); got != secret {
		t.Errorf("victim's file holds %q", got)
	}
}

// TestTenantForkBomb: a fork bomb stops at the default pids limit, and
// meanwhile the daemon answers and another container starts.
func TestTenantForkBomb(t *testing.T) {
	d := startTenantDaemon(t)
	d.must("run", "-d", "--name", "bomb", d.image, "tenantprobe", "forkbomb", "100000", "20s")
	var logs string
	for i := 0; i < 600 && !strings.Contains(logs, "HOLDING"); i++ {
		time.Sleep(100 * time.Millisecond)
		logs, _, _ = d.estiba("logs", "bomb")
	}
	if !strings.Contains(logs, "HOLDING") {
		t.Fatalf("fork bomb never reached its limit:\n%s", logs)
	}
	infos := map[string]string{}
	for _, l := range strings.Split(logs, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "INFO "), " "); ok && strings.HasPrefix(l, "INFO ") {
			infos[k] = v
		}
	}
	forked, _ := strconv.Atoi(infos["forked"])
	if infos["pids.max"] != "4096" || forked > 4096 {
		t.Errorf("fork bomb: %d processes, pids.max %q (want the default limit 4096)", forked, infos["pids.max"])
	}
	if out := d.must("run", "--rm", d.image, "echo", "neighbour"); out != "neighbour" {
		t.Errorf("a neighbour during the fork bomb printed %q", out)
	}
	d.must("rm", "-f", "bomb")
}

// TestTenantIdentity: every default container has its own 65536-id range,
// disjoint from the others' and from the host's ordinary ids, and its own
// name; nothing of the host's or a neighbour's identity shows.
func TestTenantIdentity(t *testing.T) {
	d := startTenantDaemon(t)
	hostName, _ := os.Hostname()
	type rng struct{ base, size uint64 }
	var ranges []rng
	names := map[string]bool{}
	for i := 0; i < 3; i++ {
		// Keep each container running so the ids stay allocated.
		d.must("run", "-d", "--name", fmt.Sprintf("id%d", i), d.image, "sleep", "600")
		out, errs, code := d.estiba("exec", fmt.Sprintf("id%d", i), "tenantprobe", "identity")
		infos := checkProbe(t, "identity", out, errs, code)
		f := strings.Split(infos["uid_map"], ",")
		if len(f) != 3 || f[0] != "0" || infos["gid_map"] != infos["uid_map"] {
			t.Fatalf("container %d: uid_map %q gid_map %q, want one range from 0", i, infos["uid_map"], infos["gid_map"])
		}
		base, _ := strconv.ParseUint(f[1], 10, 32)
		size, _ := strconv.ParseUint(f[2], 10, 32)
		if size != 65536 || base < 65536 {
			t.Errorf("container %d maps 0 to host %d (%d ids): want 65536 ids above the host's ordinary ones", i, base, size)
		}
		for _, r := range ranges {
			if base < r.base+r.size && r.base < base+size {
				t.Errorf("container %d's ids %d+%d overlap another's %d+%d", i, base, size, r.base, r.size)
			}
		}
		ranges = append(ranges, rng{base, size})
		h := infos["hostname"]
		if h == hostName || names[h] {
			t.Errorf("container %d has hostname %q (host %q, others %v)", i, h, hostName, names)
		}
		for n := range names {
			if strings.Contains(infos["hosts"], n) {
				t.Errorf("container %d's /etc/hosts names a neighbour: %s", i, infos["hosts"])
			}
		}
		names[h] = true
	}
}

// TestTenantOOMScore: a container's processes (init and exec) get the
// default oom_score_adj written, not inherited from the monitor that starts
// them (an operator who protects the monitor with a negative score must not
// protect its tenants), and cannot lower it. This host lacks
// CAP_SYS_RESOURCE, so the monitor's score is raised instead of lowered to
// show the inheritance.
func TestTenantOOMScore(t *testing.T) {
	d := startTenantDaemon(t)
	adjPath := fmt.Sprintf("/proc/%d/oom_score_adj", d.monitor)
	if err := os.WriteFile(adjPath, []byte("500"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(adjPath, []byte("0"), 0) })
	infos := d.probe(t, nil, "oomadj")
	if infos["oom_score_adj"] != "0" {
		t.Errorf("container oom_score_adj %q, want 0 (monitor's: 500)", infos["oom_score_adj"])
	}
	d.must("run", "-d", "--name", "oom", d.image, "sleep", "600")
	out, errs, code := d.estiba("exec", "oom", "tenantprobe", "oomadj")
	if infos := checkProbe(t, "exec oomadj", out, errs, code); infos["oom_score_adj"] != "0" {
		t.Errorf("exec oom_score_adj %q, want 0 (monitor's: 500)", infos["oom_score_adj"])
	}
}

// TestTenantLogFlood: a line with no newline, terminal escapes and a forged
// json-file record neither grows the monitor nor forges an entry.
func TestTenantLogFlood(t *testing.T) {
	d := startTenantDaemon(t)
	before := vmHWM(t, d.monitor)
	d.must("run", "-d", "--name", "flood", d.image, "tenantprobe", "bigline", strconv.Itoa(64<<20))
	d.must("wait", "flood")
	if grew := vmHWM(t, d.monitor) - before; grew > 16<<10 {
		t.Errorf("monitor peak RSS grew by %d KiB on a 64 MiB line", grew)
	}
	out, errs, code := d.estiba("logs", "flood")
	if code != 0 || len(out) < 64<<20 {
		t.Errorf("logs: exit %d, %d bytes of stdout (want the whole 64 MiB)", code, len(out))
	}
	if strings.Contains(errs, "forged") {
		t.Errorf("a forged json-file record reached stderr: %.200q", errs)
	}
}

func nftForward(table string) string {
	out, _ := exec.Command("nft", "list", "chain", "inet", table, "forward").CombinedOutput()
	return string(out)
}

// vmHWM is a process's peak resident set in KiB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("no VmHWM for pid %d", pid)
	return 0
}

// TestTenantAPIBadInput: oversized requests get a clear 400 at create, not
// a daemon that balloons or a container that fails later with E2BIG.
func TestTenantAPIBadInput(t *testing.T) {
	d := startTenantDaemon(t)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", strings.TrimPrefix(d.host, "unix://"))
	}}}
	labels := map[string]string{}
	for i := 0; i < 100000; i++ {
		labels[fmt.Sprintf("label-%06d", i)] = strings.Repeat("v", 100)
	}
	tests := []struct {
		name string
		body map[string]any
		code int
		want string
	}{
		{"env string over MAX_ARG_STRLEN", map[string]any{"Env": []string{"BIG=" + strings.Repeat("x", 200<<10)}}, 400, "over the kernel's limit"},
		{"env total over ARG_MAX", map[string]any{"Env": manyEnv(30, 100<<10)}, 400, "over the kernel's limit"},
		{"argument over MAX_ARG_STRLEN", map[string]any{"Cmd": []string{"true", strings.Repeat("x", 200<<10)}}, 400, "over the kernel's limit"},
		{"64 MiB environment", map[string]any{"Env": []string{"BIG=" + strings.Repeat("x", 64<<20)}}, 400, "over the limit"},
		{"10 MiB of labels", map[string]any{"Labels": labels}, 400, "over the limit"},
		{"hostname forging /etc/hosts entries", map[string]any{"Hostname": "x\n6.6.6.6 victim.example"}, 400, "invalid hostname"},
		{"hostname over HOST_NAME_MAX", map[string]any{"Hostname": strings.Repeat("a", 100)}, 400, "invalid hostname"},
		{"user outside the container's ids", map[string]any{"User": "70000"}, 400, "outside the 65536 ids"},
		{"large but valid environment", map[string]any{"Env": manyEnv(10, 100<<10)}, 201, ""},
	}
	before := vmHWM(t, d.cmd.Process.Pid)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"Image": d.image, "Cmd": []string{"true"}}
			for k, v := range tc.body {
				body[k] = v
			}
			b, _ := json.Marshal(body)
			resp, err := client.Post("http://estiba/v1.47/containers/create", "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(msg), tc.want) {
				t.Errorf("create: %d %s, want %d with %q", resp.StatusCode, msg, tc.code, tc.want)
			}
		})
	}
	if grew := vmHWM(t, d.cmd.Process.Pid) - before; grew > 256<<10 {
		t.Errorf("daemon peak RSS grew by %d MiB on refused requests", grew>>10)
	}
}

func manyEnv(n, size int) []string {
	var env []string
	for i := 0; i < n; i++ {
		env = append(env, fmt.Sprintf("V%02d=%s", i, strings.Repeat("x", size-4)))
	}
	return env
}

// TestTenantSymlinks: symlinks a tenant controls — in a volume it shares
// with a later container, or in its image — must not steer the daemon's or
// runtime's mounts and files outside the container's root.
func TestTenantSymlinks(t *testing.T) {
	d := startTenantDaemon(t)
	escape := filepath.Join(os.TempDir(), fmt.Sprintf("hostile-escape-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.RemoveAll(escape) })
	// A volume whose content a previous tenant wrote.
	d.must("run", "--rm", "-v", "hostilevol:/v", d.image, "true")
	mp := filepath.Join(d.work, "data", "volumes", "hostilevol", "_data")
	for name, target := range map[string]string{"abs": escape, "up": "../../../../../../../../../../" + escape, "root": "/"} {
		if err := os.Symlink(target, filepath.Join(mp, name)); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(d.work, "bindsrc")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/v/abs/bind", "/v/up/bind", "/v/root" + escape + "/bind"} {
		out, errs, code := d.estiba("run", "--rm", "-v", "hostilevol:/v", "-v", src+":"+target+":ro", "--tmpfs", target+"-tmpfs", d.image, "true")
		t.Logf("mount at %s through the volume's symlinks: exit %d %s%s", target, code, out, errs)
	}
	// An image whose /etc and /mnt lead out: the daemon makes the hostname,
	// hosts and resolv.conf mount points there.
	rootfs := filepath.Join(d.work, "evil")
	buildRootfs(t, rootfs)
	os.RemoveAll(filepath.Join(rootfs, "etc"))
	os.RemoveAll(filepath.Join(rootfs, "mnt"))
	symlink(t, escape+"/etc", filepath.Join(rootfs, "etc"))
	symlink(t, "../../../../../../../../.."+escape+"/mnt", filepath.Join(rootfs, "mnt"))
	tarball := filepath.Join(d.work, "evil.tar")
	if out, err := exec.Command("tar", "--numeric-owner", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	d.must("import", tarball, "hostile/evil")
	out, errs, code := d.estiba("run", "--rm", "--tmpfs", "/mnt/x", "-v", "hostilevol:/etc/vol", "hostile/evil", "cat", "/etc/hostname")
	t.Logf("image with /etc and /mnt symlinks: exit %d %s%s", code, out, errs)
	// A tenant whose rootfs is writable (idmapped layers) plants the same
	// symlinks itself, for its next start.
	// (Mount points cannot be moved, but their parents can.)
	plant := "mv /data /data.old && mv /run /run.old && ln -s " + escape + "/data /data && ln -s ../../../../../../../.." + escape + "/run /run && ls -ld /data /run"
	out, errs, code = d.estiba("run", "--name", "planter", "-v", "hostilevol:/data/sub", "--tmpfs", "/run/x", d.image, "sh", "-c", plant)
	t.Logf("planting symlinks in its own rootfs: exit %d %s%s", code, out, errs)
	out, errs, code = d.estiba("start", "-a", "planter")
	t.Logf("restart over its own symlinks: exit %d %s%s", code, out, errs)
	if _, err := os.Lstat(escape); err == nil {
		files, _ := exec.Command("find", escape).CombinedOutput()
		t.Errorf("the daemon or runtime wrote outside the container's root:\n%s", files)
	}
	for m := range testutil.Mounts(t) {
		if strings.HasPrefix(m, escape) {
			t.Errorf("mount outside the container's root: %s", m)
		}
	}
}

// TestTenantNetwork: with the default network (loopback only) a tenant
// reaches no host service; on a user-defined network (its other settings
// the defaults), a tenant with CAP_NET_RAW reaches its own network's
// containers, but no host service (through the gateway or the host's
// other addresses), no container of another network, and no container
// with a forged source address.
func TestTenantNetwork(t *testing.T) {
	d := startTenantDaemon(t)
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan string, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	hostTargets := []string{"127.0.0.1:" + port}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok && p.IP.To4() != nil && !p.IP.IsLoopback() {
			hostTargets = append(hostTargets, p.IP.String()+":"+port)
		}
	}
	// The default network: loopback only.
	d.probe(t, nil, append([]string{"tcpreach"}, hostTargets...)...)
	for _, n := range []struct{ name, subnet string }{{"hostile-a", "10.239.1.0/24"}, {"hostile-b", "10.239.2.0/24"}} {
		if _, errs, code := d.estiba("network", "create", "--subnet", n.subnet, n.name); code != 0 {
			t.Skipf("network %s (%s): %s", n.name, n.subnet, errs)
		}
	}
	d.must("run", "-d", "--name", "udpvictim", "--network", "hostile-a", d.image, "tenantprobe", "udplisten", "9000")
	d.must("run", "-d", "--name", "neighbour", "--network", "hostile-a", d.image, "nc", "-ll", "-p", "8080", "-e", "echo", "hi")
	d.must("run", "-d", "--name", "othernet", "--network", "hostile-b", d.image, "nc", "-ll", "-p", "8080", "-e", "echo", "hi")
	ip := func(name string) string {
		return d.must("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
	}
	victim, neighbour, other := ip("udpvictim"), ip("neighbour"), ip("othernet")
	targets := append([]string{"10.239.1.1:" + port, "10.239.2.1:" + port, "10.239.1.1:22", other + ":8080"}, hostTargets[1:]...)
	forged := []string{other, "10.239.1.250", "10.239.1.1", "8.8.8.8"}
	script := "nc -w 3 " + neighbour + " 8080 && echo NEIGHBOUR-OK; tenantprobe tcpreach " + strings.Join(targets, " ") + "; "
	for _, src := range forged {
		script += "tenantprobe rawspoof " + victim + " 9000 " + src + " >/dev/null; "
	}
	script += "own=$(ip -4 addr show eth0 | sed -n 's/.*inet \\([0-9.]*\\).*/\\1/p'); tenantprobe rawspoof " + victim + " 9000 $own >/dev/null; echo OWN=$own"
	out, errs, code := d.estiba("run", "--rm", "--network", "hostile-a", d.image, "sh", "-c", script)
	checkProbe(t, "network", out, errs, code)
	if !strings.Contains(out, "NEIGHBOUR-OK") {
		// Our daemon has a table of its own, but another engine's
		// table on the host (a shared CI machine) may still drop the
		// traffic: what was refused above proves nothing then.
		t.Skipf("no connection to a container of the same network; does another nftables table drop it?\n%s", nftForward(d.table))
	}
	own := ""
	if i := strings.Index(out, "OWN="); i >= 0 {
		own = strings.TrimSpace(out[i+4:])
	}
	var logs string
	for i := 0; i < 50 && !strings.Contains(logs, "from "+own+"\n"); i++ {
		time.Sleep(100 * time.Millisecond)
		logs, _, _ = d.estiba("logs", "udpvictim")
	}
	if own == "" || !strings.Contains(logs, "from "+own+"\n") {
		t.Errorf("the datagram with the tenant's own address (%q) never arrived (the probe proves nothing):\n%s", own, logs)
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.HasPrefix(l, "RECEIVED") && !strings.HasSuffix(l, "from "+own) {
			t.Errorf("a datagram with a forged source reached another container: %s", l)
		}
	}
	select {
	case from := <-accepted:
		t.Errorf("a host service accepted a connection from a container: %s", from)
	default:
	}
}

// TestTenantExecRace: while the test execs into a container over and over,
// the tenant watches for the joining process and tries to trace it, take
// its descriptors or open its binary (CVE-2016-9962, CVE-2019-5736).
func TestTenantExecRace(t *testing.T) {
	d := startTenantDaemon(t)
	d.must("run", "-d", "--name", "racer", d.image, "tenantprobe", "execrace", "120s")
	for i := 0; i < 100; i++ {
		if logs, _, _ := d.estiba("logs", "racer"); strings.Contains(logs, "WATCHING") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 40; i++ {
		args := []string{"exec", "racer", "true"}
		if i%2 == 1 {
			args = []string{"exec", "-u", "1000", "racer", "true"}
		}
		if out, errs, code := d.estiba(args...); code != 0 {
			t.Fatalf("exec: exit %d %s%s", code, out, errs)
		}
	}
	d.must("exec", "racer", "touch", "/dev/shm/execrace-stop")
	if code := d.must("wait", "racer"); code != "0" {
		t.Errorf("racer exited %s", code)
	}
	out, errs, _ := d.estiba("logs", "racer")
	infos := checkProbe(t, "execrace", out, errs, 0)
	if n, _ := strconv.Atoi(infos["processes-seen"]); n < 40 {
		t.Errorf("the racer saw %d processes of 40 execs (the probe proves nothing)", n)
	}
}
