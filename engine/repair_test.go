package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estiba/estiba/engine/store"
)

// State a kill -9 can leave behind is repaired at the next start: a
// half-created container is removed (a record of an older version's
// first phase, a directory without a record, or a record of a create whose
// snapshot was not committed yet), one the store believes running but
// no monitor knows is marked exited (255), a pending restart is resumed.
func TestRepairAtStart(t *testing.T) {
	dir := shortTempDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o711); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	recs := []*store.Container{
		{ID: strings.Repeat("a", 64), Name: "half", Created: now, Image: "fake", ImageID: "sha256:fake", Phase: store.PhaseCreating},
		{ID: strings.Repeat("b", 64), Name: "lost", Created: now, Image: "fake", ImageID: "sha256:fake", Phase: store.PhaseReady,
			State: store.State{Status: store.StatusRunning, Pid: 999999, StartedAt: now}},
		{ID: strings.Repeat("c", 64), Name: "again", Created: now, Image: "fake", ImageID: "sha256:fake", Phase: store.PhaseReady,
			Path: "/bin/sh", Args: []string{"-c", "exec sleep 30"},
			State: store.State{Status: store.StatusRestarting}, RestartDelay: 10 * time.Millisecond},
	}
	// Create commits the record and the snapshot side by side, and answers
	// once the record is: a record without a snapshot gets its snapshot
	// again (it may have been announced); one with its snapshot stays.
	recs = append(recs,
		&store.Container{ID: strings.Repeat("f", 64), Name: "cut", Created: now, Image: "fake", ImageID: "sha256:fake", Phase: store.PhaseReady,
			State: store.State{Status: store.StatusCreated}},
		&store.Container{ID: strings.Repeat("0", 64), Name: "kept", Created: now, Image: "fake", ImageID: "sha256:fake", Phase: store.PhaseReady,
			State: store.State{Status: store.StatusCreated}})
	if err := (fakeImages{dir: filepath.Join(dir, "fake-rootfs")}).PrepareRootfs(context.Background(), "sha256:fake", recs[4].ID); err != nil {
		t.Fatal(err)
	}
	recs[2].Config.Cmd = []string{"/bin/sh", "-c", "exec sleep 30"}
	recs[2].Config.Image = "fake"
	recs[2].HostConfig.RestartPolicy.Name = "always"
	for _, c := range recs {
		if err := st.Create(c, false, 0, 0); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "data", "containers", c.ID, "rootfs"), 0o711)
	}
	st.Close()
	// A create cut short after its directory, before its record.
	orphan := filepath.Join(dir, "data", "containers", strings.Repeat("d", 64))
	os.MkdirAll(filepath.Join(orphan, "rootfs"), 0o711)
	// A removal cut short after its record's commit (rm and auto-remove
	// delete the record first, then the files).
	removed := filepath.Join(dir, "data", "containers", strings.Repeat("e", 64))
	os.MkdirAll(filepath.Join(removed, "rootfs"), 0o711)
	os.WriteFile(filepath.Join(removed, "config.json"), []byte("{}"), 0o600)
	os.WriteFile(filepath.Join(removed, "container.log"), []byte("x\n"), 0o600)
	e := startEnvIn(t, dir)
	for _, d := range []string{orphan, removed} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("directory of a container without a record survived: %v", err)
		}
	}
	if out, _, _ := e.cli("inspect", "half"); strings.Contains(out, "half") {
		t.Errorf("half-created container survived: %s", out)
	}
	if out := e.mustCLI("inspect", "-f", "{{.State.Status}}", "cut"); out != "created\n" {
		t.Errorf("create without its snapshot: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "fake-rootfs", recs[3].ID)); err != nil {
		t.Errorf("snapshot of a create cut short: %v", err)
	}
	if out := e.mustCLI("inspect", "-f", "{{.State.Status}}", "kept"); out != "created\n" {
		t.Errorf("created container with its snapshot: %q", out)
	}
	if out := e.mustCLI("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "lost"); out != "exited 255\n" {
		t.Errorf("lost container: %q", out)
	}
	eventually(t, "pending restart resumed", func() bool {
		out, _, _ := e.cli("inspect", "-f", "{{.State.Status}}", "again")
		return out == "running\n"
	})
}

// TestCreateAnswersBeforeItsSnapshot: a create answers once its record is
// committed, without waiting for its rootfs snapshot; a start waits for
// the snapshot, and fails with its error if it fails; a removal waits for
// it too and leaves nothing.
func TestCreateAnswersBeforeItsSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error // of the snapshot
	}{
		{name: "snapshot made"},
		{name: "snapshot failed", err: errors.New("disk on fire")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTempDir(t)
			hook := &prepHook{gate: make(chan struct{}), err: tc.err}
			e := startEnvWith(t, dir, fakeImages{dir: filepath.Join(dir, "fake-rootfs"), prep: hook})
			created := make(chan string, 1)
			go func() {
				out, _, _ := e.cli("create", "--name", "c1", "fake", "/bin/sh", "-c", "exit 0")
				created <- out
			}()
			select {
			case out := <-created:
				if strings.TrimSpace(out) == "" {
					t.Fatal("create failed")
				}
			case <-time.After(10 * time.Second):
				close(hook.gate)
				t.Fatal("create waited for its snapshot")
			}
			started := make(chan error, 1)
			go func() {
				_, stderr, code := e.cli("start", "c1")
				if code != 0 {
					started <- errors.New(stderr)
					return
				}
				started <- nil
			}()
			select {
			case err := <-started:
				close(hook.gate)
				t.Fatalf("start answered (%v) before the snapshot was made", err)
			case <-time.After(200 * time.Millisecond):
			}
			close(hook.gate)
			select {
			case err := <-started:
				if tc.err == nil && err != nil {
					t.Fatalf("start: %v", err)
				}
				if tc.err != nil && (err == nil || !strings.Contains(err.Error(), tc.err.Error())) {
					t.Fatalf("start: %v, want the snapshot's error %q", err, tc.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no start answer")
			}
			e.mustCLI("rm", "-f", "c1")
			if ents, _ := os.ReadDir(filepath.Join(dir, "data", "containers")); len(ents) > 0 {
				t.Errorf("left after rm: %v", ents)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, "fake-rootfs")); len(ents) > 0 {
				t.Errorf("snapshots left after rm: %v", ents)
			}
		})
	}
}
