package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/topdir"
)

// TestSavedRecordFields: save (savedRecord) and saveLegacy (the whole
// Record) write the same fields, but for the legacy spec.
func TestSavedRecordFields(t *testing.T) {
	rec := Record{savedRecord: savedRecord{ID: "c", Bundle: "/b", Pid: 7, StartTime: 9, Paused: true,
		HasProcess: true, Hooks: &specs.Hooks{}, CgroupsPath: "/x", Annotations: map[string]string{"a": "b"}}}
	whole, err := json.Marshal(&rec)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := json.Marshal(&rec.savedRecord)
	if err != nil {
		t.Fatal(err)
	}
	if string(whole) != string(saved) {
		t.Errorf("savedRecord writes %s\nRecord writes %s", saved, whole)
	}
}

// TestLoadRecord reads state.json as this binary writes it and as an older
// one did (the whole spec inside, under "spec").
func TestLoadRecord(t *testing.T) {
	for _, tc := range []struct {
		name, state string
		want        Record
		hasSpec     bool
	}{
		{"current", `{"id":"c","bundle":"/b","pid":7,"startTime":9,"started":true,"hasProcess":true,"cgroupsPath":"/x","annotations":{"a":"b"}}`,
			Record{savedRecord: savedRecord{ID: "c", Bundle: "/b", Pid: 7, StartTime: 9, HasProcess: true, CgroupsPath: "/x", Annotations: map[string]string{"a": "b"}}}, false},
		{"legacy", `{"id":"c","bundle":"/b","pid":7,"spec":{"process":{"cwd":"/"},"linux":{"cgroupsPath":"/y"},"annotations":{"k":"v"}}}`,
			Record{savedRecord: savedRecord{ID: "c", Bundle: "/b", Pid: 7, HasProcess: true, CgroupsPath: "/y", Annotations: map[string]string{"k": "v"}}}, true},
		{"legacy null spec", `{"id":"c","bundle":"/b","pid":7,"spec":null}`,
			Record{savedRecord: savedRecord{ID: "c", Bundle: "/b", Pid: 7}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{Root: t.TempDir()}
			if err := os.Mkdir(r.dir("c"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(r.dir("c"), stateFile), []byte(tc.state), 0o600); err != nil {
				t.Fatal(err)
			}
			rec, err := r.load("c")
			if err != nil {
				t.Fatal(err)
			}
			if (rec.LegacySpec != nil) != tc.hasSpec || (rec.Spec != nil) != tc.hasSpec {
				t.Errorf("legacy spec %v, spec %v; want both set: %v", rec.LegacySpec != nil, rec.Spec != nil, tc.hasSpec)
			}
			rec.LegacySpec, rec.Spec = nil, nil
			if !reflect.DeepEqual(*rec, tc.want) {
				t.Errorf("got %+v\nwant %+v", *rec, tc.want)
			}
		})
	}
}

// TestRemoveStateDir: the known files go by name, anything else through
// RemoveAll; a directory already gone is no error.
func TestRemoveStateDir(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
	}{
		{"known", []string{stateFile, specFile, fifoFile, "." + stateFile}},
		{"empty", nil},
		{"other", []string{stateFile, "extra"}},
		{"gone", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{Root: t.TempDir()}
			if tc.name != "gone" {
				if err := os.Mkdir(r.dir("c"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(r.dir("c"), f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.removeStateDir("c"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(r.dir("c")); !os.IsNotExist(err) {
				t.Fatalf("state dir still there (%v)", err)
			}
		})
	}
}

func TestWaitsForExec(t *testing.T) {
	withPoststart := &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/true"}}}
	onlyPrestart := &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/true"}}}
	tests := []struct {
		noExecWait bool
		hooks      *specs.Hooks
		want       bool
	}{
		{false, nil, true},
		{false, withPoststart, true},
		{true, nil, false},
		{true, onlyPrestart, false},
		{true, withPoststart, true},
	}
	for _, tt := range tests {
		r := &Runtime{NoExecWait: tt.noExecWait}
		if got := r.waitsForExec(&Record{savedRecord: savedRecord{Hooks: tt.hooks}}); got != tt.want {
			t.Errorf("NoExecWait %v, hooks %+v: waits %v, want %v", tt.noExecWait, tt.hooks, got, tt.want)
		}
	}
}

// releaseInit returns at init's byte without execWait, and only at the
// end of file (init's exec) with it. Init is played by a writer here.
func TestReleaseInitExecWait(t *testing.T) {
	for _, execWait := range []bool{false, true} {
		fifo := filepath.Join(t.TempDir(), fifoFile)
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		start, _, err := procStat(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		rec := &Record{savedRecord: savedRecord{ID: "c", Pid: os.Getpid(), StartTime: start}}
		// As init does: the fifo held by an O_PATH fd first, reopened for
		// writing through it, since releaseInit removes its name (a
		// reopen by name raced that removal: ENOENT).
		path, err := os.OpenFile(fifo, unix.O_PATH, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer path.Close()
		done := make(chan error, 1)
		go func() { done <- (&Runtime{}).releaseInit(rec, fifo, execWait) }()
		w, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", path.Fd()), os.O_WRONLY, 0) // waits for releaseInit's open
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte{0}); err != nil {
			t.Fatal(err)
		}
		if !execWait {
			select { // with w still open: no exec yet
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no execWait: still waiting for init's exec")
			}
			w.Close()
			continue
		}
		select {
		case err := <-done:
			t.Fatalf("execWait: returned (%v) before init's exec", err)
		case <-time.After(50 * time.Millisecond):
		}
		w.Close() // the exec
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestStateRootSpread: the runtime root it creates is marked for ext4 to
// spread the state directories (topdir), and a state directory is made
// in an existing root as in a new one.
func TestStateRootSpread(t *testing.T) {
	r := &Runtime{Root: filepath.Join(t.TempDir(), "a", "root")}
	for _, id := range []string{"c1", "c2"} {
		if err := r.makeStateDir(id); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(r.dir(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.makeStateDir("c1"); !errors.Is(err, ErrExist) {
		t.Fatalf("second c1: %v, want ErrExist", err)
	}
	// What a directory beside it gets from Mark says whether the file
	// system has the flag.
	probe := filepath.Join(filepath.Dir(r.Root), "probe")
	if err := os.Mkdir(probe, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := topdir.Mark(probe); err != nil {
		t.Fatal(err)
	}
	want, _ := topdir.IsMarked(probe)
	if got, err := topdir.IsMarked(r.Root); err != nil || got != want {
		t.Fatalf("root marked: %v (%v), want %v", got, err, want)
	}
}
