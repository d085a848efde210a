package engine

import (
	"testing"
	"time"

	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/engine/store"
)

// recordExit is what both an exit applied on its own and an exit recorded
// with its run (an early exit, see start) write: it must end only the run
// it belongs to, and choose removal, restart or nothing as the policy says.
func TestRecordExit(t *testing.T) {
	now := time.Now().UTC()
	running := func(policy string, autoRemove bool) *store.Container {
		c := &store.Container{ID: "x", State: store.State{Status: store.StatusRunning, Pid: 42, StartedAt: now}}
		c.HostConfig.RestartPolicy.Name = policy
		c.HostConfig.AutoRemove = autoRemove
		return c
	}
	exit := monitor.Status{ID: "x", Pid: 42, ExitCode: 3, ExitedAt: now.Add(time.Second)}
	for _, tc := range []struct {
		name    string
		c       *store.Container
		st      monitor.Status
		applied bool
		status  store.Status
	}{
		{"plain", running("", false), exit, true, store.StatusExited},
		{"auto-remove", running("", true), exit, true, store.StatusRemoving},
		{"restart always", running("always", false), exit, true, store.StatusRestarting},
		{"another run's exit", running("", false), monitor.Status{ID: "x", Pid: 7, ExitCode: 1}, false, store.StatusRunning},
		{"not running", &store.Container{ID: "x", State: store.State{Status: store.StatusExited}}, exit, false, store.StatusExited},
	} {
		ex := recordExit(tc.c, tc.st)
		if ex.applied != tc.applied || tc.c.State.Status != tc.status {
			t.Errorf("%s: applied %v status %s, want %v %s", tc.name, ex.applied, tc.c.State.Status, tc.applied, tc.status)
		}
		if tc.applied && (tc.c.State.Pid != 0 || tc.c.State.ExitCode != 3 || !tc.c.State.FinishedAt.Equal(exit.ExitedAt)) {
			t.Errorf("%s: state %+v", tc.name, tc.c.State)
		}
	}
}

// A wait that re-reads an exit notify has already answered must not block
// on the second answer (a docker wait hung so, once, in CI): the first
// stands.
func TestAnswerAfterNotify(t *testing.T) {
	for _, notified := range []bool{false, true} {
		d := &Daemon{waiters: map[string][]*waiter{}}
		w := d.waitFor("x", "not-running")
		if notified {
			d.notify("x", "exit", 3)
		}
		done := make(chan struct{})
		go func() { d.answer("x", w, 7); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("notified %v: answer blocked", notified)
		}
		want := int64(7)
		if notified {
			want = 3
		}
		if r := <-w.ch; r.StatusCode != want {
			t.Errorf("notified %v: got %d, want %d", notified, r.StatusCode, want)
		}
		if len(d.waiters["x"]) != 0 {
			t.Errorf("notified %v: the waiter is still registered", notified)
		}
	}
}
