// Package hooks runs OCI lifecycle hooks: the container state as JSON on
// stdin, the hook's own args and env, and its timeout.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Run runs each hook in order and stops at the first failure. The caller
// decides what a failure means for its phase: prestart, createRuntime,
// createContainer and startContainer failures fail the operation;
// poststart and poststop failures are only warnings (runtime-spec
// "Lifecycle").
func Run(phase string, hs []specs.Hook, state *specs.State) error {
	if len(hs) == 0 {
		return nil
	}
	in, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s hook: encode state: %w", phase, err)
	}
	for i := range hs {
		if err := runOne(&hs[i], in); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", phase, i, hs[i].Path, err)
		}
	}
	return nil
}

// RunAll runs every hook even when some fail, and returns their failures
// joined: for poststart and poststop, whose failures the spec makes warnings
// that must not stop the remaining hooks.
func RunAll(phase string, hs []specs.Hook, state *specs.State) error {
	if len(hs) == 0 {
		return nil
	}
	in, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s hook: encode state: %w", phase, err)
	}
	var errs []error
	for i := range hs {
		if err := runOne(&hs[i], in); err != nil {
			errs = append(errs, fmt.Errorf("%s hook #%d (%s): %w", phase, i, hs[i].Path, err))
		}
	}
	return errors.Join(errs...)
}

func runOne(h *specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	// Path is absolute and Args[0] is passed as given (it may differ from
	// Path), so build the Cmd by hand rather than with LookPath.
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = h.Args
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A hook that forks a daemon keeps the output pipe open; do not wait
	// for it past the hook's own exit.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		if out.Len() > 0 {
			return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out.Bytes()))
		}
		return err
	}
	return nil
}
