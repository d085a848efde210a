package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/engine"
	"github.com/estiba/estiba/engine/internal/fakeruntime"
	"github.com/estiba/estiba/engine/monitor"
)

// The test binary doubles as the daemon and the monitor of the kill -9
// test (with the fake runtime), so they run as separate processes.
func TestMain(m *testing.M) {
	switch os.Getenv("ESTIBA_TEST_ROLE") {
	case "monitor":
		os.Exit(roleMonitor())
	case "daemon":
		os.Exit(roleDaemon())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func roleMonitor() int {
	dir := os.Getenv("ESTIBA_TEST_DIR")
	monitor.BecomeSubreaper()
	os.WriteFile(filepath.Join(dir, "monitor.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	err := monitor.Run(ctx, fakeruntime.New(), filepath.Join(dir, "monitor"), filepath.Join(dir, "m.sock"), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func roleDaemon() int {
	dir := os.Getenv("ESTIBA_TEST_DIR")
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	o := engine.Options{
		Config: engine.Config{Root: filepath.Join(dir, "data"), MonitorSocket: filepath.Join(dir, "m.sock"),
			UsernsFirstID: 1 << 20, UsernsMaxID: 1 << 30, LogMaxSize: 4096, LogMaxFiles: 50, Version: "test"},
		Socket: filepath.Join(dir, "api.sock"), Images: fakeImages{dir: filepath.Join(dir, "fake-rootfs")},
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		StartMonitor: func() error {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "ESTIBA_TEST_ROLE=monitor")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			if err := cmd.Start(); err != nil {
				return err
			}
			go cmd.Wait()
			return nil
		},
	}
	if err := engine.Serve(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startDaemonProcess(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ESTIBA_TEST_ROLE=daemon", "ESTIBA_TEST_DIR="+dir)
	cmd.Stderr = os.Stderr
	os.Remove(filepath.Join(dir, "api.sock"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitSocket(t, filepath.Join(dir, "api.sock"))
	return cmd
}

// kill -9 of the daemon while a container streams numbered lines: the
// container keeps running, every line reaches the log in order, and its
// exit, and that of a container exiting while the daemon is down, are
// recorded.
func TestKill9Daemon(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "api.sock")
	d := startDaemonProcess(t, dir)
	t.Cleanup(func() {
		runCLI(sock, "", "rm", "-f", "streamer", "quick")
		if d.ProcessState == nil {
			d.Process.Signal(syscall.SIGTERM)
			d.Wait()
		}
		if b, err := os.ReadFile(filepath.Join(dir, "monitor.pid")); err == nil {
			pid, _ := strconv.Atoi(string(b))
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	const n = 300
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo line $i; i=$((i+1)); sleep 0.005; done; exit 7", n)
	mustRun := func(args ...string) string {
		t.Helper()
		out, errs, code := runCLI(sock, "", args...)
		if code != 0 {
			t.Fatalf("estiba %v: %d %s%s", args, code, out, errs)
		}
		return out
	}
	mustRun("run", "-d", "--name", "streamer", "fake", "/bin/sh", "-c", script)
	mustRun("run", "-d", "--name", "quick", "fake", "/bin/sh", "-c", "sleep 0.5; exit 9")
	time.Sleep(300 * time.Millisecond)
	d.Process.Kill()
	d.Wait()
	// The daemon is gone for a while; "quick" exits meanwhile.
	time.Sleep(time.Second)
	d = startDaemonProcess(t, dir)
	if out := mustRun("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "quick"); out != "exited 9\n" {
		t.Errorf("exit while down: %q", out)
	}
	if out := mustRun("wait", "streamer"); out != "7\n" {
		t.Errorf("streamer exit %q", out)
	}
	out := mustRun("logs", "streamer")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("log has %d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if l != fmt.Sprintf("line %d", i) {
			t.Fatalf("log line %d = %q", i, l)
		}
	}
}

// kill -9 of the daemon amid removals, which delete the record before the
// files (rm, and the exit of a --rm container): the next start leaves no
// container directory without a record, and every --rm container goes.
func TestKill9DuringRemovals(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "api.sock")
	d := startDaemonProcess(t, dir)
	t.Cleanup(func() {
		if out, _, _ := runCLI(sock, "", "ps", "-aq"); out != "" {
			runCLI(sock, "", append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
		if d.ProcessState == nil {
			d.Process.Signal(syscall.SIGTERM)
			d.Wait()
		}
		if b, err := os.ReadFile(filepath.Join(dir, "monitor.pid")); err == nil {
			pid, _ := strconv.Atoi(string(b))
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			runCLI(sock, "", "run", "-d", "--rm", "--name", fmt.Sprintf("auto%d", i), "fake", "/bin/sh", "-c", "exit 0")
			out, _, _ := runCLI(sock, "", "create", "--name", fmt.Sprintf("made%d", i), "fake", "/bin/true")
			if id := strings.TrimSpace(out); id != "" {
				runCLI(sock, "", "rm", id)
			}
		}
	}()
	time.Sleep(700 * time.Millisecond)
	d.Process.Kill()
	d.Wait()
	close(stop)
	<-done
	d = startDaemonProcess(t, dir)
	// A --rm container created but not started when the daemon died stays,
	// as with Docker: only the ones that ran must go.
	eventually(t, "every --rm container that ran removed", func() bool {
		out, _, _ := runCLI(sock, "", "ps", "-a", "--format", "{{.Names}} {{.Status}}")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "auto") && !strings.HasSuffix(l, " Created") {
				t.Log(l)
				return false
			}
		}
		return true
	})
	out, _, _ := runCLI(sock, "", "ps", "-aq", "--no-trunc")
	ids := map[string]bool{}
	for _, id := range strings.Fields(out) {
		ids[id] = true
	}
	ents, err := os.ReadDir(filepath.Join(dir, "data", "containers"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !ids[e.Name()] {
			t.Errorf("directory of container %s has no record", e.Name())
		}
	}
}
