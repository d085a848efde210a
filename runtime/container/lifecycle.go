package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/runtime/cgroups"
	"github.com/estiba/estiba/runtime/hooks"
)

// Start releases a created container's init to exec the user process, then
// runs the poststart hooks (their failures are warnings).
func (r *Runtime) Start(id string) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	return r.start(rec)
}

func (r *Runtime) start(rec *Record) error {
	id := rec.ID
	if st := r.status(rec); st != string(specs.StateCreated) {
		return fmt.Errorf("container %q is %s, not created: %w", id, st, ErrState)
	}
	if !rec.HasProcess {
		// Nothing to run: the container stops here.
		if pfd, err := unix.PidfdOpen(rec.Pid, 0); err == nil {
			unix.PidfdSendSignal(pfd, unix.SIGKILL, nil, 0)
			unix.Close(pfd)
		}
		return fmt.Errorf("container %q has no process to start: %w", id, ErrInvalid)
	}
	fifo := filepath.Join(r.dir(id), fifoFile)
	if err := r.releaseInit(rec, fifo, r.waitsForExec(rec)); err != nil {
		return err
	}
	if h := rec.Hooks; h != nil {
		// The state the hooks see is the one start just made, even if
		// the process has already exited.
		st := r.specState(rec)
		st.Status, st.Pid = specs.StateRunning, rec.Pid
		if err := hooks.RunAll("poststart", h.Poststart, st); err != nil {
			r.warn(err.Error())
		}
	}
	return nil
}

// waitsForExec tells whether start waits for init's execve of the
// container's process: always, unless NoExecWait; and with poststart hooks
// even then.
func (r *Runtime) waitsForExec(rec *Record) bool {
	return !r.NoExecWait || (rec.Hooks != nil && len(rec.Hooks.Poststart) > 0)
}

// releaseInit opens the fifo for reading, which unblocks init's open for
// writing, and removes it: from then on the container's status is running
// (see status; there is no state file to rewrite). Then it reads the
// byte init writes once released and, with execWait, reads on to end of
// file: init's end is close-on-exec, so EOF means init has exec'd the
// container's process (or died), and poststart hooks, which the spec runs
// after that exec, come after it. The open is non-blocking and the
// wait polls, so that an init that died meanwhile is noticed instead of
// blocking start forever.
func (r *Runtime) releaseInit(rec *Record, fifo string, execWait bool) error {
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Unlink(fifo); err != nil {
		return fmt.Errorf("remove exec fifo: %w", err)
	}
	got := false
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll exec fifo: %w", err)
		}
		if n > 0 {
			var b [1]byte
			switch n, _ := unix.Read(fd, b[:]); {
			case n == 1:
				got = true
				if !execWait {
					return nil
				}
				continue
			case n == 0 && got:
				return nil // init exec'd
			}
		}
		if !rec.alive() {
			if got {
				return nil
			}
			return fmt.Errorf("container %q: init exited before start", rec.ID)
		}
	}
}

// Run creates and starts a container; the caller waits with Container.Wait.
func (r *Runtime) Run(id, bundle string, o CreateOptions) (*Container, error) {
	c, err := r.Create(id, bundle, o)
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		r.Delete(id, true)
		c.cmd.Wait()
		return nil, err
	}
	return c, nil
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if all {
		return r.killAll(rec, sig)
	}
	if !rec.alive() {
		return fmt.Errorf("container %q is not running: %w", id, ErrState)
	}
	// A pidfd pins the process: the check above and the signal cannot be
	// split by the pid's reuse.
	pfd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		return fmt.Errorf("kill %q: %w", id, err)
	}
	defer unix.Close(pfd)
	if !rec.alive() {
		return fmt.Errorf("container %q is not running: %w", id, ErrState)
	}
	if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil {
		return fmt.Errorf("kill %q: %w", id, err)
	}
	return nil
}

func (r *Runtime) killAll(rec *Record, sig unix.Signal) error {
	cg, err := r.cgroupManager(rec)
	if err != nil {
		return fmt.Errorf("kill --all %q: %w", rec.ID, err)
	}
	pids, err := cg.Pids()
	if err != nil {
		return fmt.Errorf("kill --all %q: %w", rec.ID, err)
	}
	for _, p := range pids {
		if err := unix.Kill(p, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill --all %q: pid %d: %w", rec.ID, p, err)
		}
	}
	return nil
}

// Delete removes a stopped container: its cgroup and state directory;
// poststop hooks run last (failures are warnings). force first kills a
// container in any other status (the spec makes deleting a created or
// running container without it an error).
func (r *Runtime) Delete(id string, force bool) error {
	return r.delete(id, force, nil)
}

// delete is Delete with the container's cgroup manager when the caller
// already has one (cg nil: make it from the state).
func (r *Runtime) delete(id string, force bool, cg cgroups.Manager) error {
	rec, err := r.load(id)
	if err != nil {
		if force && !errors.Is(err, ErrInvalid) {
			return r.deleteBroken(id)
		}
		return err
	}
	return r.deleteRecord(rec, force, cg)
}

// deleteRecord is delete of a loaded record.
func (r *Runtime) deleteRecord(rec *Record, force bool, cg cgroups.Manager) error {
	id := rec.ID
	var err error
	st := r.status(rec)
	if st != string(specs.StateStopped) && !force {
		return fmt.Errorf("container %q is %s: stop it or use --force: %w", id, st, ErrState)
	}
	if cg == nil {
		if cg, err = r.cgroupManager(rec); err != nil {
			return fmt.Errorf("delete %q: %w", id, err)
		}
	}
	if st != string(specs.StateStopped) {
		if err := r.killWait(rec, cg); err != nil {
			return err
		}
	}
	// Without a pid namespace of its own, processes may outlive init;
	// the cgroup cannot go while they are in it.
	if pids, err := cg.Pids(); err == nil && len(pids) > 0 {
		r.killAll(rec, unix.SIGKILL)
	}
	if err := cg.Destroy(); err != nil {
		return fmt.Errorf("delete %q: %w", id, err)
	}
	if err := r.removeStateDir(id); err != nil {
		return fmt.Errorf("delete %q: %w", id, err)
	}
	if h := rec.Hooks; h != nil {
		s := r.specState(rec)
		s.Status = specs.StateStopped
		if err := hooks.RunAll("poststop", h.Poststop, s); err != nil {
			r.warn(err.Error())
		}
	}
	return nil
}

// deleteBroken removes what a create killed mid-way may have left: a state
// directory without a record, and the cgroup at its default path.
func (r *Runtime) deleteBroken(id string) error {
	if _, err := os.Stat(r.dir(id)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	rec := &Record{savedRecord: savedRecord{ID: id}}
	if cg, err := r.cgroupManager(rec); err == nil {
		if pids, err := cg.Pids(); err == nil {
			for _, p := range pids {
				unix.Kill(p, unix.SIGKILL)
			}
		}
		cg.Destroy()
	}
	if err := r.removeStateDir(id); err != nil {
		return fmt.Errorf("delete %q: %w", id, err)
	}
	return nil
}

// killWait kills every process of the container and waits until init is
// gone. Init is not our child (its creator has exited), so it is watched
// through a pidfd rather than waited for.
func (r *Runtime) killWait(rec *Record, cg cgroups.Manager) error {
	pfd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("kill %q: %w", rec.ID, err)
	}
	defer unix.Close(pfd)
	if rec.alive() {
		unix.PidfdSendSignal(pfd, unix.SIGKILL, nil, 0)
	}
	r.killAll(rec, unix.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for rec.alive() && time.Now().Before(deadline) {
		unix.Poll([]unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}, 100)
		// If we are its parent (Run in-process), reap it.
		var ws syscall.WaitStatus
		syscall.Wait4(rec.Pid, &ws, syscall.WNOHANG, nil)
	}
	if rec.alive() {
		return fmt.Errorf("container %q: init did not exit after SIGKILL", rec.ID)
	}
	return nil
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	return r.setPaused(id, true)
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	return r.setPaused(id, false)
}

func (r *Runtime) setPaused(id string, pause bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	st := r.status(rec)
	if pause && st != string(specs.StateRunning) && st != string(specs.StateCreated) {
		return fmt.Errorf("container %q is %s: cannot pause: %w", id, st, ErrState)
	}
	if !pause && st != "paused" {
		return fmt.Errorf("container %q is %s, not paused: %w", id, st, ErrState)
	}
	cg, err := r.cgroupManager(rec)
	if err != nil {
		return err
	}
	if pause {
		err = cg.Freeze()
	} else {
		err = cg.Thaw()
	}
	if err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	rec.Paused = pause
	return r.save(rec)
}

// Update changes the resource limits of a container.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if st := r.status(rec); st == string(specs.StateStopped) {
		return fmt.Errorf("container %q is stopped: %w", id, ErrState)
	}
	cg, err := r.cgroupManager(rec)
	if err != nil {
		return err
	}
	if err := cg.Set(res); err != nil {
		return fmt.Errorf("update %q: %w", id, err)
	}
	spec, err := r.fullSpec(rec)
	if err != nil {
		return err
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	spec.Linux.Resources = mergeResources(spec.Linux.Resources, res)
	return r.saveSpec(rec)
}

// mergeResources records the new limits over the old ones.
func mergeResources(old, n *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		return n
	}
	out := *old
	if n.Memory != nil {
		out.Memory = n.Memory
	}
	if n.CPU != nil {
		out.CPU = n.CPU
	}
	if n.Pids != nil {
		out.Pids = n.Pids
	}
	if n.BlockIO != nil {
		out.BlockIO = n.BlockIO
	}
	if n.Unified != nil {
		out.Unified = n.Unified
	}
	return &out
}

// Pids lists the processes of the container (host pids).
func (r *Runtime) Pids(id string) ([]int, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	cg, err := r.cgroupManager(rec)
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Stats reads the container's resource usage.
func (r *Runtime) Stats(id string) (*cgroups.Stats, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	cg, err := r.cgroupManager(rec)
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}
