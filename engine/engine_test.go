package engine_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/estiba/estiba/engine/internal/fakeruntime"
)

func TestVersionInfoPs(t *testing.T) {
	e := startEnv(t)
	if out := e.mustCLI("version"); !strings.Contains(out, "API version:\t1.47") {
		t.Errorf("version: %s", out)
	}
	if out := e.mustCLI("info"); !strings.Contains(out, "Containers: 0") {
		t.Errorf("info: %s", out)
	}
	if out := e.mustCLI("ps", "-a"); !strings.HasPrefix(out, "CONTAINER ID") {
		t.Errorf("ps: %s", out)
	}
	_, errs, code := e.cli("inspect", "nope")
	if code == 0 || !strings.Contains(errs, "No such object") {
		t.Errorf("inspect missing: %d %s", code, errs)
	}
}

func TestRunAttachedExitCodeAndRm(t *testing.T) {
	e := startEnv(t)
	out, errs, code := e.cli("run", "--rm", "-e", "A=b", "fake", "/bin/sh", "-c", "echo out $A $FROM_IMAGE; echo err >&2; exit 3")
	if code != 3 || out != "out b 1\n" || errs != "err\n" {
		t.Fatalf("run: code %d out %q err %q", code, out, errs)
	}
	if out := e.mustCLI("ps", "-aq"); out != "" {
		t.Fatalf("--rm left %q", out)
	}
	// stdin with -i: the client's EOF closes the container's stdin.
	out, errs, code = runCLI(e.socket, "piped\n", "run", "--rm", "-i", "fake", "/bin/cat")
	if code != 0 || out != "piped\n" {
		t.Fatalf("run -i: %d %q %q", code, out, errs)
	}
}

// A start that fails once the init exists (the run is being recorded by
// then, see Daemon.start) leaves the container created, with the error,
// and removable; a later start works.
func TestStartFailsAfterFork(t *testing.T) {
	e := startEnv(t)
	_, errs, code := e.cli("run", "-d", "--name", "bad", "-e", fakeruntime.FailStart, "fake", "sleep", "30")
	if code == 0 || !strings.Contains(errs, "start of") {
		t.Fatalf("run: code %d, stderr %q", code, errs)
	}
	out := e.mustCLI("inspect", "-f", "{{.State.Status}} {{.State.Pid}} {{.RestartCount}} {{.State.Error}}", "bad")
	if !strings.HasPrefix(out, "created 0 0 ") || !strings.Contains(out, "start of") {
		t.Fatalf("after a failed start: %q", out)
	}
	e.mustCLI("rm", "bad")
	e.mustCLI("run", "-d", "--name", "good", "fake", "sleep", "30")
	if out := e.mustCLI("inspect", "-f", "{{.State.Status}}", "good"); out != "running\n" {
		t.Fatalf("start: %q", out)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	e := startEnv(t)
	id := strings.TrimSpace(e.mustCLI("run", "-d", "--name", "web", "-l", "app=x", "fake", "/bin/sh", "-c", "echo started; exec sleep 60"))
	if len(id) != 64 {
		t.Fatalf("id %q", id)
	}
	if _, errs, code := e.cli("run", "-d", "--name", "web", "fake", "true"); code == 0 || !strings.Contains(errs, "already in use") {
		t.Fatalf("name clash: %d %s", code, errs)
	}
	eventually(t, "log line", func() bool { out, _, _ := e.cli("logs", "web"); return out == "started\n" })
	if out := e.mustCLI("ps", "--filter", "label=app=x", "-q"); strings.TrimSpace(out) != id[:12] {
		t.Fatalf("ps filter: %q", out)
	}
	if out := e.mustCLI("inspect", "-f", "{{.State.Status}}", "web"); out != "running\n" {
		t.Fatalf("status %q", out)
	}
	e.mustCLI("pause", "web")
	if out := e.mustCLI("inspect", "-f", "{{.State.Status}}", "web"); out != "paused\n" {
		t.Fatalf("status %q", out)
	}
	e.mustCLI("unpause", "web")
	if out := e.mustCLI("top", "web"); !strings.Contains(out, "sleep 60") {
		t.Fatalf("top: %s", out)
	}
	if _, errs, code := e.cli("rm", "web"); code == 0 || !strings.Contains(errs, "stop the container") {
		t.Fatalf("rm running: %d %s", code, errs)
	}
	e.mustCLI("stop", "-t", "5", "web")
	if out := e.mustCLI("inspect", "-f", "{{.State.ExitCode}}", "web"); out != "143\n" {
		t.Fatalf("exit code after stop %q", out)
	}
	if out := e.mustCLI("ps", "-a"); !strings.Contains(out, "Exited (143)") {
		t.Fatalf("ps -a: %s", out)
	}
	e.mustCLI("start", "web")
	if out := e.mustCLI("logs", "--tail", "1", "web"); out != "started\n" {
		t.Fatalf("logs tail %q", out)
	}
	e.mustCLI("rm", "-f", "web")
	if out := e.mustCLI("ps", "-aq"); out != "" {
		t.Fatalf("rm -f left %q", out)
	}
}

func TestRestartPolicy(t *testing.T) {
	e := startEnv(t)
	e.mustCLI("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "fake", "/bin/sh", "-c", "echo try; exit 1")
	eventually(t, "two restarts then exited", func() bool {
		out, _, _ := e.cli("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky")
		return out == "2 exited\n"
	})
	if out := e.mustCLI("logs", "flaky"); out != "try\ntry\ntry\n" {
		t.Fatalf("logs %q", out)
	}
	// always, then a user stop: no more restarts.
	e.mustCLI("run", "-d", "--name", "loop", "--restart", "always", "fake", "/bin/sh", "-c", "exec sleep 60")
	e.mustCLI("stop", "-t", "1", "loop")
	if out := e.mustCLI("inspect", "-f", "{{.State.Status}}", "loop"); out != "exited\n" {
		t.Fatalf("after stop: %q", out)
	}
}

func TestExecAndWait(t *testing.T) {
	e := startEnv(t)
	e.mustCLI("run", "-d", "--name", "box", "fake", "/bin/sh", "-c", "exec sleep 60")
	out, _, code := e.cli("exec", "box", "/bin/sh", "-c", "echo in exec; exit 2")
	if code != 2 || out != "in exec\n" {
		t.Fatalf("exec: %d %q", code, out)
	}
	e.mustCLI("kill", "-s", "TERM", "box")
	if out := e.mustCLI("wait", "box"); out != "143\n" {
		t.Fatalf("wait: %q", out)
	}
}

// The stock docker CLI against the daemon.
func TestDockerCLI(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed")
	}
	e := startEnv(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(docker, args...)
		cmd.Env = []string{"DOCKER_HOST=unix://" + e.socket, "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	steps := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"version", "--format", "{{.Server.APIVersion}}"}, "1.47", 0},
		{[]string{"run", "--rm", "fake", "/bin/sh", "-c", "echo hello; exit 5"}, "hello", 5},
		{[]string{"run", "-d", "--name", "d1", "fake", "/bin/sh", "-c", "echo line; exec sleep 60"}, "", 0},
		{[]string{"ps", "--format", "{{.Names}} {{.Status}}"}, "d1 Up", 0},
		{[]string{"logs", "d1"}, "line", 0},
		{[]string{"exec", "d1", "echo", "from-exec"}, "from-exec", 0},
		{[]string{"inspect", "--format", "{{.State.Running}}", "d1"}, "true", 0},
		{[]string{"rm", "d1"}, "stop the container", 1},
		{[]string{"rm", "-f", "d1"}, "d1", 0},
		{[]string{"images"}, "fake", 0},
		{[]string{"run", "--rm", "-p", "8080:80", "fake", "true"}, "network layer", 125},
		{[]string{"volume", "create", "vol1"}, "vol1", 0},
		{[]string{"volume", "ls"}, "vol1", 0},
		{[]string{"run", "--rm", "-v", "vol1:/data", "fake", "true"}, "", 0},
		{[]string{"volume", "rm", "vol1"}, "vol1", 0},
		{[]string{"volume", "inspect", "vol1"}, "no such volume", 1},
		{[]string{"network", "ls"}, "not supported", 1},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("docker %s: exit %d (want %d), output %q (want %q)", strings.Join(s.args, " "), code, s.code, out, s.want)
		}
	}
}
