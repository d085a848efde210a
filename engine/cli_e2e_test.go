package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/image/registry/registrytest"
	"golang.org/x/sys/unix"
)

// The tests here prove issue 4's command list end to end: every command
// with the stock docker CLI and with the estiba CLI (same flags), and every
// run/create flag with an effect seen from inside the container or through
// inspect.

// sub is e for a subtest: failures go to t.
func (e *e2e) sub(t *testing.T) *e2e {
	c := *e
	c.t = t
	return &c
}

// tools are the two CLIs under test; the suffix keeps their containers apart.
func (e *e2e) tools(t *testing.T) []struct{ name, bin, sfx string } {
	tools := []struct{ name, bin, sfx string }{{"estiba", e.bin, "-e"}}
	if _, err := exec.LookPath("docker"); err == nil {
		tools = append(tools, struct{ name, bin, sfx string }{"docker", "docker", "-d"})
	} else {
		t.Log("docker CLI not installed: estiba CLI only")
	}
	return tools
}

// cliCase is one command line and what its output must (not) hold.
type cliCase struct {
	args []string
	want string // substring of stdout+stderr
	not  string // must not appear ("" for no check)
	code int
}

func (e *e2e) check(bin string, c cliCase) string {
	e.t.Helper()
	out, errs, code := e.cmd(bin, c.args...)
	all := out + errs
	if code != c.code || !strings.Contains(all, c.want) || (c.not != "" && strings.Contains(all, c.not)) {
		e.t.Errorf("%s %s: exit %d (want %d), output %q (want %q, not %q)", filepath.Base(bin), strings.Join(c.args, " "), code, c.code, all, c.want, c.not)
	}
	return out
}

func (e *e2e) mustOut(bin string, args ...string) string {
	e.t.Helper()
	out, errs, code := e.cmd(bin, args...)
	if code != 0 {
		e.t.Fatalf("%s %s: exit %d: %s%s", filepath.Base(bin), strings.Join(args, " "), code, out, errs)
	}
	return strings.TrimSpace(out)
}

func (e *e2e) inspect(name, format string) string {
	out, _, _ := e.estiba("inspect", "-f", format, name)
	return strings.TrimSpace(out)
}

// TestE2ECommands runs issue 4's command list with both CLIs.
func TestE2ECommands(t *testing.T) {
	e := startE2E(t)
	tarball := busyboxTar(t, e.work)
	e.mustOut(e.bin, "import", tarball, "e2e/bb")
	reg := registrytest.Start(t, registrytest.Options{})
	remote := reg.Host + "/e2e/bb:v1"
	e.mustOut(e.bin, "tag", "e2e/bb", remote)
	e.mustOut(e.bin, "push", remote)
	e.mustOut(e.bin, "rmi", remote)
	for _, tool := range e.tools(t) {
		t.Run(tool.name, func(t *testing.T) {
			e := e.sub(t)
			bin, s := tool.bin, tool.sfx
			t0 := strconv.FormatInt(time.Now().Unix()-1, 10)
			for _, c := range []cliCase{
				{args: []string{"version"}, want: "API version"},
				{args: []string{"info"}, want: "Containers:"},
				{args: []string{"pull", remote}, want: "v1"},
				{args: []string{"images"}, want: reg.Host + "/e2e/bb"},
				{args: []string{"rmi", remote}, want: "Untagged: " + remote},
				{args: []string{"tag", "e2e/bb", "e2e/bb:t" + s}},
				{args: []string{"images", "e2e/bb"}, want: "t" + s},
				{args: []string{"rmi", "e2e/bb:t" + s}, want: "Untagged: e2e/bb:t" + s},
				{args: []string{"create", "--name", "c1" + s, "-l", "team=a" + s, "e2e/bb", "sleep", "60"}},
				{args: []string{"ps", "--filter", "name=c1" + s}, not: "c1" + s},
				{args: []string{"ps", "-a", "--filter", "name=c1" + s}, want: "c1" + s},
				{args: []string{"ps", "-a", "--filter", "status=created"}, want: "c1" + s},
				{args: []string{"start", "c1" + s}, want: "c1" + s},
				{args: []string{"ps"}, want: "c1" + s},
				{args: []string{"ps", "--filter", "status=running"}, want: "c1" + s},
				{args: []string{"ps", "-a", "--filter", "status=exited"}, not: "c1" + s},
				{args: []string{"ps", "--filter", "label=team=a" + s}, want: "c1" + s},
				{args: []string{"ps", "--filter", "label=team=b" + s}, not: "c1" + s},
				{args: []string{"ps", "--filter", "ancestor=e2e/bb"}, want: "c1" + s},
				{args: []string{"ps", "--filter", "ancestor=nope"}, not: "c1" + s},
				{args: []string{"ps", "--filter", "health=none", "--filter", "name=c1" + s}, want: "c1" + s},
				{args: []string{"ps", "--filter", "status=bogus"}, want: "invalid filter", code: 1},
				{args: []string{"ps", "--filter", "name=c1" + s, "--format", "{{.Names}} {{.State}} {{.Label \"team\"}}"}, want: "c1" + s + " running a" + s},
				{args: []string{"ps", "--filter", "name=c1" + s, "--format", "table {{.Image}}\t{{.Names}}"}, want: "IMAGE"},
				{args: []string{"top", "c1" + s}, want: "sleep 60"},
				{args: []string{"stats", "--no-stream", "c1" + s}, want: "c1" + s},
				{args: []string{"port", "c1" + s}},
				{args: []string{"exec", "c1" + s, "echo", "exec-ok"}, want: "exec-ok"},
				{args: []string{"exec", "c1" + s, "sh", "-c", "exit 5"}, code: 5},
				{args: []string{"inspect", "-f", "{{.State.Running}} {{.Name}}", "c1" + s}, want: "true /c1" + s},
				{args: []string{"pause", "c1" + s}, want: "c1" + s},
				{args: []string{"ps", "--filter", "status=paused"}, want: "c1" + s},
				{args: []string{"inspect", "-f", "{{.State.Status}}", "c1" + s}, want: "paused"},
				{args: []string{"unpause", "c1" + s}, want: "c1" + s},
				{args: []string{"restart", "-t", "1", "c1" + s}, want: "c1" + s},
				{args: []string{"inspect", "-f", "{{.State.Status}}", "c1" + s}, want: "running"},
				{args: []string{"kill", "c1" + s}, want: "c1" + s},
				{args: []string{"wait", "c1" + s}, want: "137"},
				{args: []string{"rm", "c1" + s}, want: "c1" + s},
				{args: []string{"ps", "-a", "--filter", "name=c1" + s}, not: "c1" + s},
				// attached run: streams split, exit status passed on.
				{args: []string{"run", "--name", "a1" + s, "e2e/bb", "sh", "-c", "echo out; echo err >&2; exit 4"}, want: "out", code: 4},
				{args: []string{"run", "--rm", "--name", "a2" + s, "e2e/bb", "echo", "rm-ok"}, want: "rm-ok"},
				{args: []string{"ps", "-a", "--filter", "name=a2" + s}, not: "a2" + s},
				// The lines are all written before stop (wait), or a fast
				// stop -t 0 kills the shell between them.
				{args: []string{"run", "-d", "--name", "d1" + s, "e2e/bb", "sh", "-c", "echo l1; echo l2; echo l3"}},
				{args: []string{"wait", "d1" + s}, want: "0"},
				{args: []string{"stop", "-t", "0", "d1" + s}, want: "d1" + s},
				{args: []string{"logs", "d1" + s}, want: "l1\nl2\nl3"},
				{args: []string{"logs", "--tail", "1", "d1" + s}, want: "l3", not: "l2"},
				{args: []string{"rm", "-f", "d1" + s}, want: "d1" + s},
				{args: []string{"run", "-d", "--name", "f1" + s, "e2e/bb", "sleep", "60"}},
				{args: []string{"rm", "f1" + s}, want: "stop the container before removing", code: 1},
				{args: []string{"rm", "-f", "f1" + s}, want: "f1" + s},
			} {
				e.check(bin, c)
			}
			until := strconv.FormatInt(time.Now().Unix()+1, 10)
			for _, c := range []cliCase{
				{args: []string{"events", "--since", t0, "--until", until, "--filter", "container=a1" + s, "--filter", "event=die"}, want: "die", not: "start"},
				{args: []string{"events", "--since", t0, "--until", until, "--filter", "event=create"}, want: "c1" + s, not: "destroy"},
				{args: []string{"system", "df"}, want: "Images"},
				{args: []string{"system", "prune", "-f"}, want: "Total reclaimed space"},
				{args: []string{"ps", "-a", "--filter", "name=a1" + s}, not: "a1" + s},
			} {
				e.check(bin, c)
			}
			// ps --filter id= with a prefix of the id.
			id := e.mustOut(bin, "run", "-d", "--name", "i1"+s, "e2e/bb", "sleep", "60")
			e.check(bin, cliCase{args: []string{"ps", "-q", "--filter", "id=" + id[:10]}, want: id[:12]})
			e.check(bin, cliCase{args: []string{"ps", "-q", "--filter", "id=ffffffffff"}, not: id[:12]})
			// logs -t stamps every line.
			e.check(bin, cliCase{args: []string{"run", "--name", "t1" + s, "e2e/bb", "echo", "stamped"}, want: "stamped"})
			e.check(bin, cliCase{args: []string{"logs", "-t", "t1" + s}, want: "Z stamped"})
			e.logsFollow(bin, "lf"+s)
			e.statsStream(bin, "i1"+s)
			e.eventsStream(bin, "ev"+s)
			e.mustOut(bin, "rm", "-f", "i1"+s, "t1"+s)
		})
	}
}

// background starts a CLI and collects its output.
type background struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out strings.Builder
}

func (b *background) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *background) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

func (e *e2e) start(bin string, args ...string) *background {
	e.t.Helper()
	b := &background{cmd: exec.Command(bin, args...)}
	b.cmd.Env = []string{"ESTIBA_HOST=" + e.host, "DOCKER_HOST=" + e.host, "HOME=" + e.work, "PATH=" + os.Getenv("PATH")}
	b.cmd.Stdout, b.cmd.Stderr = b, b
	if err := b.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { b.cmd.Process.Kill(); b.cmd.Wait() })
	return b
}

// wait waits for the process to end by itself, up to d.
func (b *background) wait(t *testing.T, d time.Duration) (int, error) {
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		if _, ok := err.(*exec.ExitError); ok {
			err = nil // the code tells
		}
		return b.cmd.ProcessState.ExitCode(), err
	case <-time.After(d):
		b.cmd.Process.Kill()
		<-done
		return -1, fmt.Errorf("still running after %v; output %q", d, b.String())
	}
}

// logsFollow: logs -f prints lines written after it started, and ends
// when the container stops.
func (e *e2e) logsFollow(bin, name string) {
	t := e.t
	e.mustOut(bin, "run", "-d", "--name", name, "e2e/bb", "sh", "-c", "echo first; sleep 1; echo second; exec sleep 60")
	f := e.start(bin, "logs", "-f", name)
	eventually(t, "logs -f to print a later line", func() bool { return strings.Contains(f.String(), "second") })
	e.mustOut(bin, "stop", "-t", "0", name)
	if _, err := f.wait(t, 5*time.Second); err != nil {
		t.Errorf("logs -f after stop: %v", err)
	}
	if got := f.String(); !strings.HasPrefix(got, "first\nsecond\n") {
		t.Errorf("logs -f: %q", got)
	}
	e.mustOut(bin, "rm", name)
}

// statsStream: stats without --no-stream keeps printing.
func (e *e2e) statsStream(bin, name string) {
	s := e.start(bin, "stats", name)
	eventually(e.t, "two stats samples", func() bool { return strings.Count(s.String(), "CONTAINER ID") >= 2 })
	s.cmd.Process.Kill()
}

// eventsStream: events without --until streams live events, filtered.
func (e *e2e) eventsStream(bin, name string) {
	ev := e.start(bin, "events", "--filter", "container="+name, "--filter", "event=start")
	time.Sleep(300 * time.Millisecond) // subscribed
	e.mustOut(bin, "run", "--name", name, "e2e/bb", "true")
	eventually(e.t, "a live start event", func() bool { return strings.Contains(ev.String(), "start") })
	ev.cmd.Process.Kill()
	if strings.Contains(ev.String(), " die ") {
		e.t.Errorf("events filter let a die through: %q", ev.String())
	}
	e.mustOut(bin, "rm", name)
}

// flagCase runs `run --rm FLAGS e2e/bb CMD...` (or, with format, create
// then inspect -f format) and checks the output.
type flagCase struct {
	flag   string // the flag under test (for the report)
	args   []string
	cmd    []string
	format string // inspect this instead of running
	want   string
	// lines must each be a whole line of the output, in any order: the
	// docker CLI (28.2) sometimes sends -e variables in another order
	// than given (seen in its create request).
	lines []string
	code  int
}

// TestE2ERunFlags checks that each run/create flag the issue names has its
// effect, with both CLIs.
func TestE2ERunFlags(t *testing.T) {
	e := startE2E(t)
	tarball := busyboxTar(t, e.work)
	e.mustOut(e.bin, "import", tarball, "e2e/bb")
	envFile := filepath.Join(e.work, "env.list")
	os.WriteFile(envFile, []byte("# comment\nFROM_FILE=1\nSPACED=a b\n"), 0o644)
	bind := filepath.Join(e.work, "bind")
	os.MkdirAll(bind, 0o755)
	os.WriteFile(filepath.Join(bind, "f"), []byte("bound\n"), 0o644)
	// A profile that fails mkdir with EOPNOTSUPP, to tell it from EPERM.
	profile := filepath.Join(e.work, "seccomp.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":95}]}`), 0o644)
	// Memory and cpu files of cgroup v1 (this host), with v2's as fallback.
	cg := func(v1, v2 string) []string {
		return []string{"sh", "-c", "cat /sys/fs/cgroup/" + v1 + " 2>/dev/null || cat /sys/fs/cgroup/" + v2}
	}
	cases := []flagCase{
		{flag: "-e", args: []string{"-e", "X=y", "-e", "HOSTVAR"}, cmd: []string{"env"}, lines: []string{"X=y", "HOSTVAR=from-client"}},
		{flag: "--env-file", args: []string{"--env-file", envFile}, cmd: []string{"env"}, want: "FROM_FILE=1\nSPACED=a b"},
		{flag: "-v bind", args: []string{"-v", bind + ":/mnt:ro"}, cmd: []string{"sh", "-c", "cat /mnt/f; touch /mnt/g 2>&1"}, want: "bound\ntouch: /mnt/g: Read-only file system", code: 1},
		{flag: "-v named", args: []string{"--userns", "host", "-v", "vol1:/data"}, cmd: []string{"sh", "-c", "echo kept > /data/x"}},
		{flag: "-v named", args: []string{"--userns", "host", "-v", "vol1:/data:ro"}, cmd: []string{"cat", "/data/x"}, want: "kept"},
		{flag: "--tmpfs", args: []string{"--tmpfs", "/scratch:size=1m"}, cmd: []string{"grep", " /scratch ", "/proc/mounts"}, want: "tmpfs /scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k"},
		{flag: "-w", args: []string{"-w", "/tmp"}, cmd: []string{"pwd"}, want: "/tmp"},
		{flag: "-u", args: []string{"-u", "65534:65534"}, cmd: []string{"id"}, want: "uid=65534 gid=65534"},
		{flag: "--entrypoint", args: []string{"--entrypoint", "echo"}, cmd: []string{"from-entrypoint"}, want: "from-entrypoint"},
		{flag: "--hostname", args: []string{"--hostname", "hh1"}, cmd: []string{"hostname"}, want: "hh1"},
		{flag: "-l", args: []string{"-l", "k1=v1", "-l", "k2"}, format: `{{index .Config.Labels "k1"}}/{{index .Config.Labels "k2"}}`, want: "v1/"},
		{flag: "--name", args: []string{"--name", "named1"}, format: "{{.Name}}", want: "/named1"},
		{flag: "--memory", args: []string{"--memory", "64m"}, cmd: cg("memory/memory.limit_in_bytes", "memory.max"), want: "67108864"},
		{flag: "--memory-swap", args: []string{"--memory", "64m", "--memory-swap", "128m"}, cmd: cg("memory/memory.memsw.limit_in_bytes", "memory.swap.max"), want: "134217728"},
		{flag: "--cpus", args: []string{"--cpus", "0.5"}, cmd: cg("cpu/cpu.cfs_quota_us", "cpu.max"), want: "50000"},
		{flag: "--cpu-shares", args: []string{"--cpu-shares", "512"}, cmd: cg("cpu/cpu.shares", "cpu.weight"), want: "512"},
		{flag: "--cpuset-cpus", args: []string{"--cpuset-cpus", "0"}, cmd: []string{"sh", "-c", "cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus; nproc"}, want: "0\n1\n"},
		{flag: "--pids-limit", args: []string{"--pids-limit", "33"}, cmd: cg("pids/pids.max", "pids.max"), want: "33"},
		{flag: "--ulimit", args: []string{"--ulimit", "nofile=1234:2345"}, cmd: []string{"sh", "-c", "ulimit -n; ulimit -Hn"}, want: "1234\n2345"},
		{flag: "--read-only", args: []string{"--read-only", "--tmpfs", "/tmp"}, cmd: []string{"sh", "-c", "touch /tmp/ok && touch /x"}, want: "touch: /x: Read-only file system", code: 1},
		{flag: "--cap-add", args: []string{"--cap-add", "NET_ADMIN"}, cmd: []string{"grep", "CapEff", "/proc/self/status"}, want: "CapEff:\t00000000a80435fb"},
		{flag: "--cap-drop", args: []string{"--cap-drop", "CHOWN"}, cmd: []string{"grep", "CapEff", "/proc/self/status"}, want: "CapEff:\t00000000a80425fa"},
		{flag: "--cap-drop", args: []string{"--cap-drop", "ALL"}, cmd: []string{"grep", "CapEff", "/proc/self/status"}, want: "CapEff:\t0000000000000000"},
		{flag: "--security-opt seccomp=<file>", args: []string{"--security-opt", "seccomp=" + profile}, cmd: []string{"mkdir", "/tmp/d"}, want: "Operation not supported", code: 1},
		{flag: "--security-opt seccomp=unconfined", args: []string{"--security-opt", "seccomp=unconfined"}, cmd: []string{"grep", "Seccomp:", "/proc/self/status"}, want: "Seccomp:\t0"},
		{flag: "(default seccomp)", cmd: []string{"grep", "Seccomp:", "/proc/self/status"}, want: "Seccomp:\t2"},
		{flag: "--security-opt no-new-privileges", args: []string{"--security-opt", "no-new-privileges"}, cmd: []string{"grep", "NoNewPrivs", "/proc/self/status"}, want: "NoNewPrivs:\t1"},
		{flag: "--security-opt no-new-privileges", args: []string{"--security-opt", "no-new-privileges=false"}, cmd: []string{"grep", "NoNewPrivs", "/proc/self/status"}, want: "NoNewPrivs:\t0"},
		{flag: "--privileged", args: []string{"--privileged"}, cmd: []string{"sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status; grep -c ' /proc/sys proc ro' /proc/mounts"}, want: "CapEff:\t000001ff", code: 1},
		{flag: "--privileged", args: []string{"--privileged"}, cmd: []string{"grep", "Seccomp:", "/proc/self/status"}, want: "Seccomp:\t0"},
		{flag: "--init", args: []string{"--init"}, cmd: []string{"ps", "-o", "pid,comm"}, want: "1 estiba-init"},
		{flag: "-i", args: []string{"-i"}, cmd: []string{"cat"}, want: "from-stdin"},
		{flag: "-t", args: []string{"-t"}, cmd: []string{"tty"}, want: "/dev/pts/0"},
		{flag: "--stop-signal", args: []string{"--stop-signal", "USR1"}, format: "{{.Config.StopSignal}}", want: "USR1"},
		{flag: "--stop-timeout", args: []string{"--stop-timeout", "3"}, format: "{{.Config.StopTimeout}}", want: "3"},
		{flag: "--restart", args: []string{"--restart", "on-failure:4"}, format: "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", want: "on-failure:4"},
		{flag: "--health-*", args: []string{"--health-cmd", "true", "--health-interval", "2s", "--health-retries", "7"}, format: "{{json .Config.Healthcheck}}", want: `"Interval":2000000000,"Retries":7`},
	}
	for _, tool := range e.tools(t) {
		t.Run(tool.name, func(t *testing.T) {
			e := e.sub(t)
			for i, c := range cases {
				name := fmt.Sprintf("fl%d%s", i, tool.sfx)
				if c.format != "" {
					args := append([]string{"create"}, c.args...)
					if !containsArg(c.args, "--name") {
						args = append(args, "--name", name)
					} else {
						name = c.args[indexArg(c.args, "--name")+1]
					}
					e.mustOut(tool.bin, append(args, "e2e/bb", "true")...)
					if got := e.inspect(name, c.format); !strings.Contains(got, c.want) {
						t.Errorf("%s %s: inspect %s = %q, want %q", tool.name, c.flag, c.format, got, c.want)
					}
					e.mustOut(tool.bin, "rm", name)
					continue
				}
				args := append(append([]string{"run", "--rm"}, c.args...), "e2e/bb")
				args = append(args, c.cmd...)
				cmd := exec.Command(tool.bin, args...)
				cmd.Env = []string{"ESTIBA_HOST=" + e.host, "DOCKER_HOST=" + e.host, "HOME=" + e.work, "PATH=" + os.Getenv("PATH"), "HOSTVAR=from-client"}
				cmd.Stdin = strings.NewReader("from-stdin\n")
				out, _ := cmd.CombinedOutput()
				code := cmd.ProcessState.ExitCode()
				if code != c.code || !strings.Contains(string(out), c.want) || !hasLines(string(out), c.lines) {
					t.Errorf("%s run %s: exit %d (want %d), output %q (want %q, lines %q)", tool.name, strings.Join(c.args, " "), code, c.code, out, c.want, c.lines)
				}
			}
			e.lifecycleFlags(tool.bin, tool.sfx)
		})
	}
	// -H and ESTIBA_HOST (estiba only; docker has DOCKER_HOST).
	for _, c := range []struct {
		env  string
		args []string
		want string
		code int
	}{
		{"", []string{"-H", e.host, "version"}, "API version", 0},
		{"ESTIBA_HOST=" + e.host, []string{"version"}, "API version", 0},
		{"ESTIBA_HOST=unix:///nonexistent.sock", []string{"version"}, "/nonexistent.sock", 1},
		{"ESTIBA_HOST=unix:///nonexistent.sock", []string{"-H", e.host, "ps"}, "CONTAINER ID", 0},
	} {
		cmd := exec.Command(e.bin, c.args...)
		cmd.Env = []string{c.env, "HOME=" + e.work}
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("%s estiba %v: exit %d, %q (want %d, %q)", c.env, c.args, cmd.ProcessState.ExitCode(), out, c.code, c.want)
		}
	}
}

// hasLines reports whether every one of lines is a whole line of out.
func hasLines(out string, lines []string) bool {
	have := strings.Split(out, "\n")
	for _, l := range lines {
		if !slices.Contains(have, l) {
			return false
		}
	}
	return true
}

func containsArg(args []string, a string) bool { return indexArg(args, a) >= 0 }

func indexArg(args []string, a string) int {
	for i, x := range args {
		if x == a {
			return i
		}
	}
	return -1
}

// lifecycleFlags: the flags whose effect is on the container's life:
// -d, --stop-signal, --stop-timeout, --restart and the health check.
func (e *e2e) lifecycleFlags(bin, s string) {
	t := e.t
	// -d prints the full id.
	id := e.mustOut(bin, "run", "-d", "--name", "sig"+s, "--stop-signal", "USR1", "e2e/bb",
		"sh", "-c", `trap "echo got-usr1; exit 7" USR1; echo ready; while :; do sleep 0.1; done`)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Errorf("run -d printed %q, want a 64-hex id", id)
	}
	eventually(t, "trap set", func() bool { out, _, _ := e.cmd(bin, "logs", "sig"+s); return strings.Contains(out, "ready") })
	e.mustOut(bin, "stop", "sig"+s)
	if out := e.mustOut(bin, "logs", "sig"+s); !strings.Contains(out, "got-usr1") {
		t.Errorf("--stop-signal USR1: the trap did not run: %q", out)
	}
	if got := e.inspect("sig"+s, "{{.State.ExitCode}}"); got != "7" {
		t.Errorf("--stop-signal: exit code %s, want 7", got)
	}
	e.mustOut(bin, "rm", "sig"+s)

	// --stop-timeout: SIGTERM is ignored, SIGKILL comes after 2s (not 10).
	e.mustOut(bin, "run", "-d", "--name", "st"+s, "--stop-timeout", "2", "e2e/bb", "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.1; done`)
	eventually(t, "trap set", func() bool { out, _, _ := e.cmd(bin, "logs", "st"+s); return strings.Contains(out, "ready") })
	t0 := time.Now()
	e.mustOut(bin, "stop", "st"+s)
	if d := time.Since(t0); d < 1800*time.Millisecond || d > 6*time.Second {
		t.Errorf("--stop-timeout 2: stop took %v", d)
	}
	if got := e.inspect("st"+s, "{{.State.ExitCode}}"); got != "137" {
		t.Errorf("--stop-timeout: exit code %s, want 137", got)
	}
	e.mustOut(bin, "rm", "st"+s)

	// --restart.
	e.mustOut(bin, "run", "-d", "--name", "rf"+s, "--restart", "on-failure:2", "e2e/bb", "sh", "-c", "exit 3")
	eventually(t, "on-failure:2 to give up", func() bool {
		return e.inspect("rf"+s, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}") == "2 exited 3"
	})
	time.Sleep(time.Second)
	if got := e.inspect("rf"+s, "{{.RestartCount}} {{.State.Status}}"); got != "2 exited" {
		t.Errorf("on-failure:2 went on: %s", got)
	}
	e.mustOut(bin, "run", "-d", "--name", "rn"+s, "--restart", "no", "e2e/bb", "sh", "-c", "exit 3")
	e.mustOut(bin, "run", "-d", "--name", "rz"+s, "--restart", "on-failure", "e2e/bb", "true")
	e.mustOut(bin, "run", "-d", "--name", "ra"+s, "--restart", "always", "e2e/bb", "true")
	e.mustOut(bin, "run", "-d", "--name", "ru"+s, "--restart", "unless-stopped", "e2e/bb", "sh", "-c", "sleep 0.2")
	eventually(t, "always to restart twice", func() bool {
		n, _ := strconv.Atoi(e.inspect("ra"+s, "{{.RestartCount}}"))
		return n >= 2
	})
	eventually(t, "unless-stopped to restart", func() bool {
		n, _ := strconv.Atoi(e.inspect("ru"+s, "{{.RestartCount}}"))
		return n >= 1
	})
	for _, n := range []string{"rn", "rz"} {
		if got := e.inspect(n+s, "{{.RestartCount}} {{.State.Status}}"); got != "0 exited" {
			t.Errorf("%s: %s, want no restart", n, got)
		}
	}
	e.check(bin, cliCase{args: []string{"stop", "ru" + s, "ra" + s}, want: "ru" + s})
	time.Sleep(time.Second)
	for _, n := range []string{"ru", "ra"} {
		before := e.inspect(n+s, "{{.RestartCount}} {{.State.Status}}")
		time.Sleep(time.Second)
		after := e.inspect(n+s, "{{.RestartCount}} {{.State.Status}}")
		if !strings.HasSuffix(after, " exited") || before != after {
			t.Errorf("%s after stop: %s then %s, want it exited for good", n, before, after)
		}
	}
	e.mustOut(bin, "rm", "-f", "rf"+s, "rn"+s, "rz"+s, "ra"+s, "ru"+s)

	// Health: unhealthy after --health-retries failures, healthy once the
	// check passes.
	e.mustOut(bin, "run", "-d", "--name", "hc"+s, "--tmpfs", "/tmp", "--health-cmd", "test -f /tmp/ok",
		"--health-interval", "200ms", "--health-retries", "2", "e2e/bb", "sleep", "60")
	eventually(t, "unhealthy", func() bool { return e.inspect("hc"+s, "{{.State.Health.Status}}") == "unhealthy" })
	if got := e.inspect("hc"+s, "{{.State.Health.FailingStreak}}"); got < "2" {
		t.Errorf("failing streak %s at unhealthy, want >= 2", got)
	}
	e.check(bin, cliCase{args: []string{"ps", "--filter", "health=unhealthy"}, want: "hc" + s})
	e.mustOut(bin, "exec", "hc"+s, "touch", "/tmp/ok")
	eventually(t, "healthy", func() bool { return e.inspect("hc"+s, "{{.State.Health.Status}}") == "healthy" })
	e.check(bin, cliCase{args: []string{"ps", "--filter", "health=healthy"}, want: "hc" + s})
	e.mustOut(bin, "rm", "-f", "hc"+s)
}

// pty is a terminal the test drives a CLI through.
type pty struct {
	master *os.File
	mu     sync.Mutex
	out    strings.Builder
	done   chan struct{}
}

func (e *e2e) startPty(bin string, args ...string) (*pty, *exec.Cmd) {
	t := e.t
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		t.Fatal(errno)
	}
	slave := os.NewFile(fd, "pty")
	unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"ESTIBA_HOST=" + e.host, "DOCKER_HOST=" + e.host, "HOME=" + e.work, "PATH=" + os.Getenv("PATH"), "TERM=dumb"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	p := &pty{master: master, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); master.Close() })
	return p, cmd
}

func (p *pty) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *pty) waitFor(t *testing.T, what string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if strings.Contains(p.String(), what) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("terminal never showed %q: %q", what, p.String())
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatalf("%v still running", cmd.Args)
	}
	return -1
}

// TestE2ETerminal drives run -it, attach and exec -it through a pty with
// both CLIs: input reaches the shell, the detach keys (default and
// --detach-keys) leave the container running, exit codes pass through.
func TestE2ETerminal(t *testing.T) {
	e := startE2E(t)
	tarball := busyboxTar(t, e.work)
	e.mustOut(e.bin, "import", tarball, "e2e/bb")
	for _, tool := range e.tools(t) {
		t.Run(tool.name, func(t *testing.T) {
			e := e.sub(t)
			bin, n := tool.bin, "tt"+tool.sfx
			// run -it, then ctrl-p ctrl-q: the CLI exits 0, the shell runs on.
			p, cmd := e.startPty(bin, "run", "-it", "--name", n, "e2e/bb", "sh")
			p.waitFor(t, "# ")
			p.master.WriteString("echo sum-$((40+2))\r")
			p.waitFor(t, "sum-42")
			p.master.WriteString("\x10\x11")
			if code := waitExit(t, cmd); code != 0 {
				t.Errorf("run -it detach: exit %d; %q", code, p.String())
			}
			if got := e.inspect(n, "{{.State.Status}}"); got != "running" {
				t.Errorf("after detach: %s", got)
			}
			// attach --detach-keys ctrl-a,x: docker reports the detach (exit 1).
			p, cmd = e.startPty(bin, "attach", "--detach-keys", "ctrl-a,x", n)
			time.Sleep(300 * time.Millisecond)
			p.master.WriteString("echo attached-$((1+1))\r")
			p.waitFor(t, "attached-2")
			p.master.WriteString("\x01x")
			if code := waitExit(t, cmd); code != 1 {
				t.Errorf("attach detach: exit %d; %q", code, p.String())
			}
			p.waitFor(t, "read escape sequence")
			// exec -it: a tty, and the exit code of the shell.
			p, cmd = e.startPty(bin, "exec", "-it", n, "sh")
			p.waitFor(t, "# ")
			p.master.WriteString("tty; exit 6\r")
			p.waitFor(t, "/dev/pts/")
			if code := waitExit(t, cmd); code != 6 {
				t.Errorf("exec -it: exit %d; %q", code, p.String())
			}
			// exec -it, detached from: the exec's shell runs on.
			p, cmd = e.startPty(bin, "exec", "-it", n, "sh")
			p.waitFor(t, "# ")
			p.master.WriteString("\x10\x11")
			waitExit(t, cmd)
			if out := e.mustOut(bin, "top", n); strings.Count(out, " sh") < 2 {
				t.Errorf("exec -it detach ended the exec's shell: %s", out)
			}
			// attach, then exit the shell: attach ends with its status.
			p, cmd = e.startPty(bin, "attach", n)
			time.Sleep(300 * time.Millisecond)
			p.master.WriteString("exit 3\r")
			if code := waitExit(t, cmd); code != 3 {
				t.Errorf("attach, exit 3: exit %d; %q", code, p.String())
			}
			// run -it --rm: the container goes with the CLI.
			p, cmd = e.startPty(bin, "run", "-it", "--rm", "--name", n+"r", "e2e/bb", "sh")
			p.waitFor(t, "# ")
			p.master.WriteString("exit 4\r")
			if code := waitExit(t, cmd); code != 4 {
				t.Errorf("run -it --rm: exit %d; %q", code, p.String())
			}
			e.check(bin, cliCase{args: []string{"ps", "-a", "--filter", "name=" + n + "r"}, not: n + "r"})
			e.mustOut(bin, "rm", "-f", n)
		})
	}
}

// TestE2EAttach: attach --no-stdin and --sig-proxy, with both CLIs (the
// docker CLI's own sig-proxy is on by default).
func TestE2EAttach(t *testing.T) {
	e := startE2E(t)
	tarball := busyboxTar(t, e.work)
	e.mustOut(e.bin, "import", tarball, "e2e/bb")
	trap := `trap "echo got-term; exit 9" TERM; echo ready; while :; do sleep 0.1; done`
	for _, tool := range e.tools(t) {
		t.Run(tool.name, func(t *testing.T) {
			e := e.sub(t)
			bin, n := tool.bin, "at"+tool.sfx
			// run (attached) forwards SIGTERM to the container.
			r := e.start(bin, "run", "--name", n, "e2e/bb", "sh", "-c", trap)
			eventually(t, "ready", func() bool { return strings.Contains(r.String(), "ready") })
			r.cmd.Process.Signal(unix.SIGTERM)
			if code, err := r.wait(t, 10*time.Second); err != nil || code != 9 || !strings.Contains(r.String(), "got-term") {
				t.Errorf("run sig-proxy: exit %d, %v, %q", code, err, r.String())
			}
			e.mustOut(bin, "rm", n)
			// attach --no-stdin to an -i container: stdin stays the container's.
			id := e.mustOut(bin, "run", "-d", "-i", "--name", n, "e2e/bb", "sh", "-c", trap)
			a := e.start(bin, "attach", "--no-stdin", n)
			e.waitAttached(id)
			a.cmd.Process.Signal(unix.SIGTERM)
			if code, err := a.wait(t, 10*time.Second); err != nil || code != 9 || !strings.Contains(a.String(), "got-term") {
				t.Errorf("attach sig-proxy: exit %d, %v, %q", code, err, a.String())
			}
			e.mustOut(bin, "rm", n)
			if tool.name != "estiba" {
				return
			}
			// --sig-proxy=false: the signal ends the CLI, not the container.
			id = e.mustOut(bin, "run", "-d", "--name", n, "e2e/bb", "sh", "-c", trap)
			a = e.start(bin, "attach", "--sig-proxy=false", n)
			e.waitAttached(id)
			a.cmd.Process.Signal(unix.SIGTERM)
			if code, err := a.wait(t, 10*time.Second); err != nil || code != 128+15 {
				t.Errorf("attach --sig-proxy=false: exit %d, %v", code, err)
			}
			if got := e.inspect(n, "{{.State.Status}}"); got != "running" {
				t.Errorf("after attach --sig-proxy=false was signalled: %s", got)
			}
			e.mustOut(bin, "rm", "-f", n)
		})
	}
}

// waitAttached waits for the daemon's attach event for name: the CLI
// catches signals before it attaches, so it then proxies them.
func (e *e2e) waitAttached(id string) {
	eventually(e.t, "attach event of "+id, func() bool {
		out, _, _ := e.estiba("events", "--since", "1m", "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
			"--filter", "container="+id, "--filter", "event=attach")
		return strings.Contains(out, " attach ")
	})
}

// TestE2EUnsupported: endpoints estiba does not serve answer a JSON error
// with 501 (the docker CLI prints it), and the daemon carries on.
func TestE2EUnsupported(t *testing.T) {
	e := startE2E(t)
	ctx := filepath.Join(e.work, "ctx")
	os.MkdirAll(ctx, 0o755)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	if _, err := exec.LookPath("docker"); err == nil {
		for _, c := range []cliCase{
			{args: []string{"swarm", "init"}, want: "POST /swarm/init is not supported by estiba", code: 1},
			{args: []string{"plugin", "ls"}, want: "GET /plugins is not supported by estiba", code: 1},
			{args: []string{"secret", "ls"}, want: "GET /secrets is not supported by estiba", code: 1},
			{args: []string{"commit", "x"}, want: "is not supported by estiba", code: 1},
			{args: []string{"build", "-q", ctx}, want: "POST /build is not supported by estiba", code: 1},
			{args: []string{"version"}, want: "Server: estiba"},
		} {
			e.check("docker", c)
		}
	}
	sock := strings.TrimPrefix(e.host, "unix://")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1.47/containers/x/checkpoints"},
		{"GET", "/v1.47/containers/x/checkpoints"},
		{"POST", "/v1.47/build"},
		{"GET", "/v1.47/plugins"},
		{"POST", "/v1.47/swarm/init"},
		{"GET", "/v1.47/session"},
	} {
		req, _ := http.NewRequest(c.method, "http://estiba"+c.path, strings.NewReader("{}"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented || resp.Header.Get("Content-Type") != "application/json" ||
			!strings.Contains(string(b), `"message":"`) {
			t.Errorf("%s %s: %d %s %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	e.steps([]step{{"estiba", []string{"version"}, "API version", 0}})
}

// hijackAttach opens POST /containers/{name}/attach?query as the docker
// CLI does (an upgraded, raw connection).
func (e *e2e) hijackAttach(name, query string) (net.Conn, *bufio.Reader) {
	e.t.Helper()
	conn, err := net.Dial("unix", strings.TrimPrefix(e.host, "unix://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /v1.47/containers/%s/attach?%s HTTP/1.1\r\nHost: estiba\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n", name, query)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		e.t.Fatalf("attach %s?%s: %v %v", name, query, resp, err)
	}
	return conn, br
}

// readUntil reads the stream until it holds want (or ends, or 10s pass).
func readUntil(conn net.Conn, br *bufio.Reader, want string) (string, error) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 512)
	for !strings.Contains(string(got), want) {
		n, err := br.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return string(got), err
		}
	}
	return string(got), nil
}

// TestE2EAttachAPI: the daemon's side of attach: logs=1 replays what the
// container wrote, and detachKeys end the attachment (not the container,
// nor its stdin) for any client.
func TestE2EAttachAPI(t *testing.T) {
	e := startE2E(t)
	tarball := busyboxTar(t, e.work)
	e.mustOut(e.bin, "import", tarball, "e2e/bb")
	e.mustOut(e.bin, "run", "-d", "-i", "--name", "ai", "e2e/bb", "sh", "-c", "echo before; exec cat")
	eventually(t, "first line", func() bool { out, _, _ := e.estiba("logs", "ai"); return out == "before\n" })
	// logs=1 without stream: the log so far, then the end.
	conn, br := e.hijackAttach("ai", "logs=1&stdout=1&stderr=1")
	if got, err := readUntil(conn, br, "zzz"); err != io.EOF || !strings.Contains(got, "\x01\x00\x00\x00\x00\x00\x00\x07before\n") {
		t.Errorf("attach logs=1: %q, %v", got, err)
	}
	// stream with stdin and detach keys ctrl-a,x.
	conn, br = e.hijackAttach("ai", "stream=1&stdin=1&stdout=1&detachKeys=ctrl-a,x")
	conn.Write([]byte("ping\n"))
	if got, err := readUntil(conn, br, "ping"); err != nil {
		t.Fatalf("echo through attach: %q, %v", got, err)
	}
	conn.Write([]byte("\x01x"))
	if got, err := readUntil(conn, br, "zzz"); err != io.EOF {
		t.Errorf("after the detach keys: %q, %v (want EOF)", got, err)
	}
	if got := e.inspect("ai", "{{.State.Status}}"); got != "running" {
		t.Errorf("after detach: %s", got)
	}
	// Stdin is still the container's: a new attachment echoes again.
	conn, br = e.hijackAttach("ai", "stream=1&stdin=1&stdout=1")
	conn.Write([]byte("pong\n"))
	if got, err := readUntil(conn, br, "pong"); err != nil {
		t.Errorf("echo after detach: %q, %v", got, err)
	}
	e.check(e.bin, cliCase{args: []string{"events", "--since", "1m", "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "event=detach"}, want: "detach"})
	// A bad key list is refused before anything is attached.
	req, _ := http.NewRequest("POST", "http://estiba/v1.47/containers/ai/attach?stream=1&detachKeys=ctrl-1", nil)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", strings.TrimPrefix(e.host, "unix://"))
	}}}
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad detachKeys: %v %v", resp, err)
	}
	e.mustOut(e.bin, "rm", "-f", "ai")
}
