package initproc

import (
	"fmt"
)

// runExec runs a process in an existing container. The parent started us
// inside the container's namespaces (and cgroup), so the root is already
// the container's: setns into its mount namespace put us at that
// namespace's root.
func runExec(s *syncer, cfg *Config) error {
	spec, p := cfg.Spec, cfg.Process
	if p == nil {
		return fmt.Errorf("exec: no process")
	}
	prog, err := compileSeccomp(spec)
	if err != nil {
		return err
	}
	if p.OOMScoreAdj != nil {
		if err := hostProcWritesOOM(p); err != nil {
			return err
		}
	}
	if p.Terminal {
		if err := setupConsole(cfg.ConsoleFD); err != nil {
			return err
		}
	}
	listener, err := dialListener(spec)
	if err != nil {
		return err
	}
	if err := prepareExec(spec, p, cfg, prog, listener); err != nil {
		return err
	}
	s.done = true
	if err := s.enc.Encode(Msg{Type: MsgReady}); err != nil {
		return fmt.Errorf("write to runtime: %w", err)
	}
	s.sock.Close()
	return finishExec(spec, p, cfg, prog, listener)
}
