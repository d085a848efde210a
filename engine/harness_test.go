package engine_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estiba/estiba/cli"
	"github.com/estiba/estiba/engine"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/engine/internal/fakeruntime"
	"github.com/estiba/estiba/engine/monitor"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeImages knows one image, "fake", whose rootfs is the host's (the
// fake runtime runs processes on the host). A container's snapshot is an
// empty file named after it in dir, which survives a restart as a real
// snapshot does: repair looks for it.
type fakeImages struct {
	engine.NoImages
	dir string
	// prep, if set, holds PrepareRootfs until its gate is closed, then
	// fails it with its err (if set).
	prep *prepHook
}

type prepHook struct {
	gate chan struct{}
	err  error
}

func (f fakeImages) PrepareRootfs(_ context.Context, _, key string) error {
	if f.prep != nil {
		<-f.prep.gate
		if f.prep.err != nil {
			return f.prep.err
		}
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(f.dir, key), nil, 0o600)
}

func (f fakeImages) RemoveRootfs(_ context.Context, key string) error {
	err := os.Remove(filepath.Join(f.dir, key))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

func (f fakeImages) RootfsKeys(context.Context) ([]string, error) {
	ents, err := os.ReadDir(f.dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	var keys []string
	for _, e := range ents {
		keys = append(keys, e.Name())
	}
	return keys, err
}

func (fakeImages) Resolve(_ context.Context, ref string) (string, imagespec.ImageConfig, error) {
	if ref != "fake" && ref != "fake:latest" && ref != "sha256:fake" {
		return "", imagespec.ImageConfig{}, errdefsNotFound(ref)
	}
	return "sha256:fake", imagespec.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"FROM_IMAGE=1"}}, nil
}

func (fakeImages) MountRootfs(context.Context, string, string, *engine.IDRange) error {
	return nil
}
func (fakeImages) WarmIDMap(engine.IDRange)   {}
func (fakeImages) UnmountRootfs(string) error { return nil }

func (fakeImages) List(context.Context) ([]types.ImageSummary, error) {
	return []types.ImageSummary{{ID: "sha256:fake", RepoTags: []string{"fake:latest"}}}, nil
}

func errdefsNotFound(ref string) error {
	return &notFound{ref}
}

type notFound struct{ ref string }

func (e *notFound) Error() string { return "no such image: " + e.ref }
func (e *notFound) Unwrap() error { return errdefs.ErrNotFound }

// env is one daemon + monitor, in-process, on temp sockets.
type env struct {
	t      *testing.T
	socket string
	cancel context.CancelFunc
	done   chan error
}

func shortTempDir(t *testing.T) string {
	// unix socket paths are limited to 108 bytes: t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "estiba-engine-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startEnv(t *testing.T) *env {
	t.Helper()
	return startEnvIn(t, shortTempDir(t))
}

func startEnvIn(t *testing.T, dir string) *env {
	t.Helper()
	return startEnvWith(t, dir, fakeImages{dir: filepath.Join(dir, "fake-rootfs")})
}

func startEnvWith(t *testing.T, dir string, images fakeImages) *env {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	mctx, mcancel := context.WithCancel(context.Background())
	msrv, err := monitor.NewServer(fakeruntime.New(), filepath.Join(dir, "monitor"), log)
	if err != nil {
		t.Fatal(err)
	}
	msock := filepath.Join(dir, "m.sock")
	l, err := net.Listen("unix", msock)
	if err != nil {
		t.Fatal(err)
	}
	mdone := make(chan struct{})
	go func() { msrv.Serve(mctx, l); close(mdone) }()
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, socket: filepath.Join(dir, "api.sock"), cancel: cancel, done: make(chan error, 1)}
	o := engine.Options{
		Config: engine.Config{Root: filepath.Join(dir, "data"), MonitorSocket: msock, PidsLimit: 100,
			UsernsFirstID: 1 << 20, UsernsMaxID: 1 << 30, LogMaxFiles: 1, Version: "test"},
		Socket: e.socket, Images: images, Log: log,
	}
	go func() { e.done <- engine.Serve(ctx, o) }()
	waitSocket(t, e.socket)
	t.Cleanup(func() {
		// Nothing of ours may keep running.
		e.cli("rm", "-f", "--", "dummy")
		out, _, _ := e.cli("ps", "-aq")
		for _, id := range strings.Fields(out) {
			e.cli("rm", "-f", id)
		}
		cancel()
		<-e.done
		mcancel()
		<-mdone
	})
	return e
}

func waitSocket(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("socket %s never came up", path)
}

// cli runs the estiba CLI in-process against the env.
func (e *env) cli(args ...string) (stdout, stderr string, code int) {
	return runCLI(e.socket, "", args...)
}

func runCLI(socket, stdin string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	c := &cli.CLI{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Version: "test"}
	code := c.Run(append([]string{"-H", "unix://" + socket}, args...))
	return out.String(), errb.String(), code
}

func (e *env) mustCLI(args ...string) string {
	e.t.Helper()
	out, errs, code := e.cli(args...)
	if code != 0 {
		e.t.Fatalf("estiba %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// eventually polls cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
