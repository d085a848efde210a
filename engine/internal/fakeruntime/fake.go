// Package fakeruntime is a stand-in for the OCI runtime in engine tests: it
// runs a bundle's process as a plain host process (no namespaces, cgroups
// or rootfs), enough to test supervision, logs, exits and restarts.
package fakeruntime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/estiba/estiba/engine/monitor"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime implements monitor.Runtime with plain processes.
type Runtime struct {
	mu        sync.Mutex
	pids      map[string]int
	failStart map[string]bool
}

// FailStart in a process's environment makes Start fail after Create
// succeeded, as a real runtime's start does on a bad rootfs or program.
const FailStart = "FAKERUNTIME_FAIL_START=1"

// New returns an empty fake.
func New() *Runtime { return &Runtime{pids: map[string]int{}, failStart: map[string]bool{}} }

func (r *Runtime) spawn(p *specs.Process, stdio monitor.Stdio) (int, error) {
	if p == nil || len(p.Args) == 0 {
		return 0, fmt.Errorf("no process args")
	}
	if p.Terminal {
		return 0, fmt.Errorf("fake runtime: terminals are not supported")
	}
	path := p.Args[0]
	if !strings.Contains(path, "/") {
		lp, err := exec.LookPath(path)
		if err != nil {
			return 0, err
		}
		path = lp
	}
	attr := &os.ProcAttr{
		Dir:   p.Cwd,
		Env:   p.Env,
		Files: []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	proc, err := os.StartProcess(path, p.Args, attr)
	if err != nil {
		return 0, err
	}
	pid := proc.Pid
	// Release, not Wait: the monitor reaps.
	proc.Release()
	return pid, nil
}

// Create starts the process at once (the fake has no create/start split).
func (r *Runtime) Create(ctx context.Context, id, bundle string, stdio monitor.Stdio) (int, *os.File, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return 0, nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return 0, nil, err
	}
	pid, err := r.spawn(spec.Process, stdio)
	if err != nil {
		return 0, nil, err
	}
	r.mu.Lock()
	r.pids[id] = pid
	r.failStart[id] = slices.Contains(spec.Process.Env, FailStart)
	r.mu.Unlock()
	return pid, nil, nil
}

// Start does nothing, or fails (FailStart).
func (r *Runtime) Start(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failStart[id] {
		return fmt.Errorf("fake runtime: start of %s failed", id)
	}
	return nil
}

// Exec spawns p.
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, stdio monitor.Stdio) (int, *os.File, error) {
	pid, err := r.spawn(p, stdio)
	return pid, nil, err
}

func (r *Runtime) pid(id string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, ok := r.pids[id]
	if !ok {
		return 0, fmt.Errorf("container %s not running", id)
	}
	return pid, nil
}

// Kill signals the process.
func (r *Runtime) Kill(ctx context.Context, id string, sig int, all bool) error {
	pid, err := r.pid(id)
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.Signal(sig))
}

// Pause stops the process.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.Kill(ctx, id, int(syscall.SIGSTOP), false)
}

// Resume continues it.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.Kill(ctx, id, int(syscall.SIGCONT), false)
}

// Delete forgets it.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pids, id)
	return nil
}

// Pids lists the process.
func (r *Runtime) Pids(ctx context.Context, id string) ([]int, error) {
	pid, err := r.pid(id)
	if err != nil {
		return nil, err
	}
	return []int{pid}, nil
}
