package initproc

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// runExec runs a process in an existing container. The parent started us
// inside the container's namespaces (and cgroup); we join the mount
// namespace last, which puts us at that namespace's root, unless the
// parent's trampoline (user or time namespace) has joined it already.
func runExec(s *syncer, cfg *Config) error {
	spec, p := cfg.Spec, cfg.Process
	if p == nil {
		return fmt.Errorf("exec: no process")
	}
	// Not dumpable since Main started (see there).
	if cfg.MountNSFD > 0 {
		if err := joinMountNS(cfg.MountNSFD); err != nil {
			return err
		}
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
		if err := setupConsole(cfg.ConsoleFD, nil); err != nil {
			return err
		}
	}
	listener, err := dialListener(spec)
	if err != nil {
		return err
	}
	path, err := s.prepareAndReport(spec, p, cfg, prog, listener)
	if err != nil {
		return err
	}
	return finishExec(spec, p, cfg, prog, listener, path)
}

// joinMountNS enters the container's mount namespace. A thread sharing its
// fs_struct (root, cwd) with others cannot, so this thread, the one that
// will exec, takes its own first. setns sets root and cwd to the
// namespace's root: the container's rootfs after its pivot_root.
func joinMountNS(fd int) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join mount namespace: %w", err)
	}
	unix.Close(fd)
	return nil
}
