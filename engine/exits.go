package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/engine/restart"
	"github.com/estiba/estiba/engine/store"
)

// repair reconciles the store with the monitor after a (re)start (atStart)
// or a reconnection to the monitor:
//   - creations cut short (PhaseCreating, written by older versions) are
//     undone (see also sweepOrphans);
//   - at start, containers whose create the daemon's death cut short
//     between their record and their snapshot get their snapshot again
//     (see cutShort);
//   - containers the monitor says exited while we were down get their exit
//     applied (and their restart policy);
//   - containers the monitor still runs are adopted as they are;
//   - containers the store thinks run but the monitor does not know (the
//     monitor itself died) are marked dead and cleaned;
//   - restarts that were pending when we died are scheduled again.
func (d *Daemon) repair(ctx context.Context, atStart bool) error {
	resp, err := d.mon.Call(ctx, &monitor.Request{Op: monitor.OpList})
	if err != nil {
		return err
	}
	known := map[string]monitor.Status{}
	for _, st := range resp.States {
		known[st.ID] = st
	}
	list, err := d.store.List()
	if err != nil {
		return err
	}
	keys, err := d.images.RootfsKeys(ctx)
	if err != nil {
		return err
	}
	rootfs := map[string]bool{}
	for _, k := range keys {
		rootfs[k] = true
	}
	for _, c := range list {
		st, ok := known[c.ID]
		delete(known, c.ID)
		switch {
		case c.Phase == store.PhaseCreating:
			d.log.Info("repair: removing half-created container", "id", c.ID)
			d.destroy(ctx, c)
		case atStart && !ok && cutShort(c, rootfs):
			// Its create may have answered (see Create), and nothing
			// ran in it: the snapshot is made again. Not on a
			// reconnection: a create in flight is in this state.
			d.log.Info("repair: preparing the rootfs of a container whose create was cut short", "id", c.ID)
			if err := d.prepare(ctx, c); err != nil {
				d.log.Warn("repair: rootfs of a container whose create was cut short", "id", c.ID, "err", err)
			}
		case c.State.Status == store.StatusRemoving:
			// Before the monitor's word: an auto-remove commits the exit
			// and the removal at once, and the monitor may not have
			// forgotten that exit yet.
			d.destroy(ctx, c)
		case ok && st.Running:
			if c.State.Pid != st.Pid || c.State.Status != store.StatusRunning && c.State.Status != store.StatusPaused {
				d.store.Update(c.ID, func(c *store.Container) error {
					c.State.Status, c.State.Pid = store.StatusRunning, st.Pid
					if c.State.StartedAt.IsZero() {
						c.State.StartedAt = time.Now().UTC()
					}
					return nil
				})
			}
			if fresh, err := d.store.Get(c.ID); err == nil {
				d.startHealth(fresh)
			}
		case ok:
			d.applyExit(ctx, st)
		case c.State.Status == store.StatusRunning || c.State.Status == store.StatusPaused:
			d.log.Warn("repair: container lost with the monitor", "id", c.ID)
			d.applyExit(ctx, monitor.Status{ID: c.ID, Pid: c.State.Pid, ExitCode: 255, ExitedAt: time.Now().UTC()})
		case c.State.Status == store.StatusRestarting:
			d.scheduleRestart(c.ID, c.RestartDelay)
		}
	}
	// Exits of containers we no longer have: drop them.
	for id := range known {
		d.mon.Call(ctx, &monitor.Request{Op: monitor.OpForget, ID: id})
	}
	return nil
}

// cutShort says whether c is a create that the daemon's death cut short
// after its record and before its rootfs snapshot (the two are committed
// side by side, and the create answers once the record is, see Create):
// never started, and no snapshot.
func cutShort(c *store.Container, rootfs map[string]bool) bool {
	return c.State.Status == store.StatusCreated && c.State.StartedAt.IsZero() && !rootfs[c.ID]
}

// sweepOrphans removes container directories and rootfs snapshots that
// have no record: a create that the daemon's death cut short between them
// and its record (see Create). Both are looked at: on a file system
// without a journal the snapshot's commit need not carry the directory's
// mkdir to the disk. Only at start, before the API serves: an in-flight
// create has exactly such a directory and snapshot.
func (d *Daemon) sweepOrphans(ctx context.Context) error {
	ents, err := os.ReadDir(filepath.Join(d.cfg.Root, "containers"))
	if err != nil {
		return err
	}
	keys, err := d.images.RootfsKeys(ctx)
	if err != nil {
		return err
	}
	ids := map[string]bool{}
	for _, e := range ents {
		if e.IsDir() {
			ids[e.Name()] = true
		}
	}
	for _, k := range keys {
		ids[k] = true
	}
	for id := range ids {
		if !isContainerID(id) {
			continue
		}
		if _, err := d.store.Get(id); !errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		d.log.Info("repair: removing half-created container", "id", id)
		d.images.UnmountRootfs(d.rootfsDir(id))
		if err := d.images.RemoveRootfs(ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			d.log.Warn("repair: rootfs of half-created container", "id", id, "err", err)
			continue
		}
		if err := os.RemoveAll(d.containerDir(id)); err != nil {
			d.log.Warn("repair: directory of half-created container", "id", id, "err", err)
		}
	}
	return nil
}

// isContainerID: 64 lowercase hex digits, what newID makes.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// exitLoop applies exits as the monitor reports them. If the monitor
// connection breaks, it reconnects and repairs (catching up on exits).
func (d *Daemon) exitLoop(ctx context.Context, exits <-chan monitor.Status) {
	for {
		for st := range exits {
			if st.ExecID != "" {
				d.execExited(st)
				continue
			}
			d.applyExit(ctx, st)
		}
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("monitor connection lost; reconnecting")
		for {
			time.Sleep(500 * time.Millisecond)
			if ctx.Err() != nil {
				return
			}
			var err error
			if exits, err = d.mon.Subscribe(ctx); err == nil {
				d.repair(ctx, false)
				break
			}
		}
	}
}

// applyExit records an exit once (it is idempotent: a repeated report
// for a pid already recorded is only forgotten again).
func (d *Daemon) applyExit(ctx context.Context, st monitor.Status) {
	d.mu.Lock()
	if d.starting[st.ID] {
		// The run is not recorded yet: start records this with it.
		d.early[st.ID] = st
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	files := d.removeEarly(ctx, st)
	var ex exitRecord
	c, gone, err := d.store.UpdateOrDelete(st.ID, func(c *store.Container) (bool, error) {
		ex = recordExit(c, st)
		return ex.applied && goesWithExit(c), nil
	})
	d.afterExit(ctx, c, st, ex, err, files, gone)
}

// goesWithExit says whether an exit recorded in c may delete the record
// at once, before the container's files: an auto-removal then costs one
// commit, not two (removing, then gone). A kill -9 after that commit
// leaves files without a record, which the sweep at the next start
// removes (sweepOrphans), and an exit the monitor keeps, which repair
// forgets. Not with network endpoints: they are torn down after the
// commit, and only a record leads repair to them.
func goesWithExit(c *store.Container) bool {
	return c.HostConfig.AutoRemove && c.State.Status == store.StatusRemoving && c.State.Network == nil && len(c.Connected) == 0
}

// exitRecord is what recordExit did to a record.
type exitRecord struct {
	applied bool          // the exit ended the recorded run
	delay   time.Duration // before the restart, when the status is restarting
}

// recordExit writes the exit of run st into c, if st is c's recorded run,
// and decides what follows: removal, restart or nothing.
func recordExit(c *store.Container, st monitor.Status) exitRecord {
	if c.State.Pid != st.Pid || (c.State.Status != store.StatusRunning && c.State.Status != store.StatusPaused) {
		return exitRecord{}
	}
	ran := st.ExitedAt.Sub(c.State.StartedAt)
	pol, _ := restart.Validate(c.HostConfig.RestartPolicy.Name, c.HostConfig.RestartPolicy.MaximumRetryCount)
	decision, delay := pol.Decide(restart.Exit{Code: st.ExitCode, StoppedByUser: c.State.StoppedByUser, Ran: ran, Restarts: c.RestartCount}, c.RestartDelay)
	c.State.Status, c.State.Pid, c.State.ExitCode, c.State.FinishedAt = store.StatusExited, 0, st.ExitCode, st.ExitedAt
	c.State.Health = nil
	switch {
	case c.HostConfig.AutoRemove:
		// The exit and the removal in one commit (--rm waits for it).
		c.State.Status, c.RestartDelay = store.StatusRemoving, 0
	case decision:
		c.State.Status, c.RestartDelay = store.StatusRestarting, delay
	default:
		c.RestartDelay = 0
	}
	return exitRecord{applied: true, delay: delay}
}

// afterExit does what follows the commit (err) of exit st, recorded in c
// as ex says: cleanup, events, waiters, then the removal (whose files
// may be going already) or the restart.
// gone: the exit's commit deleted the record (goesWithExit).
func (d *Daemon) afterExit(ctx context.Context, c *store.Container, st monitor.Status, ex exitRecord, err error, files *removal, gone bool) {
	if (err != nil || !ex.applied || !c.HostConfig.AutoRemove) && (files == nil || files.monDone == nil) {
		// An auto-removal forgets the exit as its last step (destroy).
		d.mon.Call(ctx, &monitor.Request{Op: monitor.OpForget, ID: st.ID})
	}
	if err != nil || !ex.applied {
		if files != nil {
			files.wait()
			if files.monDone != nil {
				<-files.monDone
			}
		}
		return
	}
	d.stopHealth(c.ID)
	d.images.UnmountRootfs(d.rootfsDir(c.ID))
	if d.networks != nil && (c.State.Network != nil || len(c.Connected) > 0) {
		d.networks.Teardown(ctx, c.ID)
	}
	d.events.containerExit(c, st.ExitCode)
	d.notify(c.ID, "exit", st.ExitCode)
	switch {
	case c.HostConfig.AutoRemove:
		if files == nil {
			files = d.removeFiles(ctx, c.ID)
		}
		// Not in the caller's time: the exit loop goes on to the next
		// exit, so the removals of many --rm containers overlap instead
		// of queueing one behind the other. The exit is recorded already,
		// and a removal cut short is finished at the next start.
		go func() {
			if err := d.finishRemove(ctx, c, files, gone); err != nil {
				d.log.Warn("auto-remove", "id", c.ID, "err", err)
			}
		}()
	case c.State.Status == store.StatusRestarting:
		d.scheduleRestart(c.ID, ex.delay)
	}
}

// removeEarly starts removing an auto-removed container whose run st
// ended before the exit's commit: its files and the monitor's delete (the
// wait for the run's cgroup to go, and the monitor forgetting the exit),
// so that the commits of the two stores (state, image) and the round
// trip to the monitor overlap. It returns nil for any other container.
// Going early is safe: the container is dead and is removed whatever
// else happens. A removal cut short is found again by repair: by the
// record (removing, or running with an exit the monitor keeps or, once
// it forgot it, a run it does not know, which repair ends and removes as
// an exit would), or by the sweep of files without a record.
func (d *Daemon) removeEarly(ctx context.Context, st monitor.Status) *removal {
	c, err := d.store.Get(st.ID)
	if err != nil || !c.HostConfig.AutoRemove || c.State.Pid != st.Pid ||
		(c.State.Status != store.StatusRunning && c.State.Status != store.StatusPaused) {
		return nil
	}
	r := d.removeFiles(ctx, st.ID)
	r.deleteInMonitor(ctx, d, st.ID)
	return r
}

func (d *Daemon) scheduleRestart(id string, delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.timers[id]; t != nil {
		t.Stop()
	}
	d.timers[id] = time.AfterFunc(delay, func() {
		d.mu.Lock()
		delete(d.timers, id)
		d.mu.Unlock()
		c, err := d.store.Get(id)
		if err != nil || c.State.Status != store.StatusRestarting {
			return
		}
		if err := d.start(context.Background(), c, true); err != nil {
			d.log.Warn("restart", "id", id, "err", err)
		}
	})
}

func (d *Daemon) cancelRestart(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.timers[id]; t != nil {
		t.Stop()
		delete(d.timers, id)
	}
}

// waiter is one pending wait: "not-running"/"next-exit" fire at an exit,
// "removed" at removal.
type waiter struct {
	cond string
	ch   chan types.WaitResponse
}

func (d *Daemon) waitFor(id, cond string) *waiter {
	w := &waiter{cond: cond, ch: make(chan types.WaitResponse, 1)}
	d.mu.Lock()
	d.waiters[id] = append(d.waiters[id], w)
	d.mu.Unlock()
	return w
}

func (d *Daemon) dropWaiter(id string, w *waiter) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := d.waiters[id]
	for i, x := range list {
		if x == w {
			d.waiters[id] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(d.waiters[id]) == 0 {
		delete(d.waiters, id)
	}
}

// answer gives w the exit code and drops it, unless notify has answered it
// already: an exit that came between its registration and a re-read of
// the record. Its channel holds one answer, and a second send would block
// the caller for good.
func (d *Daemon) answer(id string, w *waiter, code int) {
	d.dropWaiter(id, w)
	select {
	case w.ch <- types.WaitResponse{StatusCode: int64(code)}:
	default:
	}
}

// notify fires waiters: event is "exit" or "removed".
func (d *Daemon) notify(id, event string, code int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var keep []*waiter
	for _, w := range d.waiters[id] {
		if event == "removed" || w.cond != "removed" {
			w.ch <- types.WaitResponse{StatusCode: int64(code)}
		} else {
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 {
		delete(d.waiters, id)
	} else {
		d.waiters[id] = keep
	}
}

// Wait blocks per condition (see api.Containers).
func (d *Daemon) Wait(ctx context.Context, ref, cond string) (<-chan types.WaitResponse, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	if cond == "" {
		cond = "not-running"
	}
	w := d.waitFor(c.ID, cond)
	// Re-read after registering: an exit between get and waitFor is seen.
	if cur, err := d.store.Get(c.ID); cond == "not-running" && err == nil &&
		cur.State.Status != store.StatusRunning && cur.State.Status != store.StatusPaused && cur.State.Status != store.StatusRestarting {
		d.answer(c.ID, w, cur.State.ExitCode)
	}
	out := make(chan types.WaitResponse, 1)
	go func() {
		select {
		case r := <-w.ch:
			out <- r
		case <-ctx.Done():
			d.dropWaiter(c.ID, w)
		}
	}()
	return out, nil
}
