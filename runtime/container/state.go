package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/openat"
	"github.com/estiba/estiba/runtime/specjson"
)

// The state directory of one container, <root>/<id>/:
//
//	state.json   Record, replaced atomically (write to a temp file, rename)
//	spec.json    the spec as create read it from config.json (the bundle
//	             may change after create); update replaces it atomically
//	exec.fifo    exists from create until start: init blocks opening it for
//	             writing; start opens it for reading, which releases init
//
// Nothing else is kept: every command is a new process that rebuilds what it
// needs (cgroup manager, status) from the record and /proc.
const (
	stateFile = "state.json"
	specFile  = "spec.json"
	fifoFile  = "exec.fifo"
)

// Record is what the runtime keeps about a container between commands:
// the fields of state.json (savedRecord) and the spec.
type Record struct {
	savedRecord
	// Spec is the whole spec: set by create, otherwise read from
	// spec.json on demand (fullSpec) by the commands that need it.
	Spec *specs.Spec `json:"-"`
	// LegacySpec is where state.json held the whole spec before
	// spec.json existed; load takes it over, so that containers created
	// by an older binary can still be managed.
	LegacySpec *specs.Spec `json:"spec,omitempty"`
	// staged: stageSave wrote the record's state file beside its place,
	// for commitSave to rename there.
	staged bool
}

// newRecord makes the record of a container being created from spec.
func newRecord(id, bundle string, spec *specs.Spec) *Record {
	rec := &Record{savedRecord: savedRecord{ID: id, Bundle: bundle, Created: time.Now().UTC()}}
	rec.setSpec(spec)
	return rec
}

func (rec *Record) setSpec(spec *specs.Spec) {
	rec.Spec = spec
	rec.HasProcess = spec.Process != nil
	rec.Hooks = spec.Hooks
	rec.Annotations = spec.Annotations
	if spec.Linux != nil {
		rec.CgroupsPath = spec.Linux.CgroupsPath
	}
}

// fullSpec returns the container's whole spec, reading spec.json if the
// record does not hold it yet.
func (r *Runtime) fullSpec(rec *Record) (*specs.Spec, error) {
	if rec.Spec != nil {
		return rec.Spec, nil
	}
	b, err := openat.ReadFile(r.specPath(rec))
	if err != nil {
		return nil, fmt.Errorf("container %q: read spec: %w", rec.ID, err)
	}
	s, err := specjson.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("container %q: decode spec: %w", rec.ID, err)
	}
	rec.Spec = s
	return s, nil
}

// saveSpec replaces spec.json with the record's spec (update).
func (r *Runtime) saveSpec(rec *Record) error {
	if rec.LegacySpec != nil {
		// The same spec, kept where the older binary put it.
		return r.save(rec)
	}
	b, err := json.Marshal(rec.Spec)
	if err != nil {
		return fmt.Errorf("container %q: encode spec: %w", rec.ID, err)
	}
	if err := writeAtomicPath(r.specPath(rec), b); err != nil {
		return fmt.Errorf("container %q: %w", rec.ID, err)
	}
	return nil
}

// specPath is where rec's spec is kept.
func (r *Runtime) specPath(rec *Record) string {
	if rec.SpecInBundle {
		return filepath.Join(rec.Bundle, "config.json")
	}
	return filepath.Join(r.dir(rec.ID), specFile)
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// validID keeps an ID from naming a path outside the root.
func validID(id string) error {
	if id == "" || len(id) > 1024 || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("invalid container id %q: %w", id, ErrInvalid)
	}
	return nil
}

func (r *Runtime) load(id string) (*Record, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	b, err := openat.ReadFile(filepath.Join(r.dir(id), stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("container %q: read state: %w", id, err)
	}
	// Decoded through savedRecord, not Record: encoding/json analyses
	// every field's type up front, and Record's LegacySpec would make each
	// start, state, kill or delete process analyse the spec's whole type
	// tree (~2 ms) for a field that is almost never there.
	var in struct {
		savedRecord
		LegacySpec json.RawMessage `json:"spec,omitempty"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("container %q: decode state: %w", id, err)
	}
	rec := &Record{savedRecord: in.savedRecord}
	if len(in.LegacySpec) > 0 && string(in.LegacySpec) != "null" {
		rec.LegacySpec = new(specs.Spec)
		if err := json.Unmarshal(in.LegacySpec, rec.LegacySpec); err != nil {
			return nil, fmt.Errorf("container %q: decode state: %w", id, err)
		}
		rec.setSpec(rec.LegacySpec)
	}
	return rec, nil
}

// savedRecord is what save writes: Record without LegacySpec, which only
// load reads. encoding/json builds the encoder of every type a struct can
// hold, whether set or not, and LegacySpec's is the spec's whole type tree:
// ~2 ms of a fresh process's time on each create.
type savedRecord struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	// Pid is the init process's pid in the runtime's pid namespace, and
	// StartTime its start time (field 22 of /proc/<pid>/stat): a pid alone
	// may have been reused by an unrelated process once init exited.
	Pid       int       `json:"pid"`
	StartTime uint64    `json:"startTime"`
	Created   time.Time `json:"created"`
	// Paused is set by pause, cleared by resume. (Whether it was started
	// is the exec fifo's absence: see status.)
	Paused bool `json:"paused,omitempty"`
	// The few parts of the spec that start, kill, pause, delete and state
	// need, so that they decode a small record instead of the whole spec
	// (whose seccomp profile alone can be tens of KiB). The hooks are the
	// create-time ones, whatever the bundle holds now.
	HasProcess  bool              `json:"hasProcess,omitempty"`
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupsPath string            `json:"cgroupsPath,omitempty"`
	// SpecInBundle: the spec is the bundle's config.json, not spec.json
	// (Runtime.BundleSpec at create).
	SpecInBundle bool `json:"specInBundle,omitempty"`
}

func (r *Runtime) save(rec *Record) error {
	if rec.LegacySpec != nil {
		// Kept where the older binary put it (see Record).
		return r.saveLegacy(rec)
	}
	if err := r.stageSave(rec); err != nil {
		return err
	}
	return r.commitSave(rec)
}

// stageSave is the first half of save: the encoding and the write of the
// temporary file, which a create does while it waits for the rootfs.
func (r *Runtime) stageSave(rec *Record) error {
	b, err := json.Marshal(&rec.savedRecord)
	if err != nil {
		return fmt.Errorf("container %q: encode state: %w", rec.ID, err)
	}
	if err := r.writeTemp(rec.ID, stateFile, b); err != nil {
		return err
	}
	rec.staged = true
	return nil
}

// commitSave puts the file stageSave wrote in place: readers see the old
// state or the new, never a part.
func (r *Runtime) commitSave(rec *Record) error {
	if err := r.commitTemp(rec.ID, stateFile); err != nil {
		return err
	}
	rec.staged = false
	return nil
}

func (r *Runtime) saveLegacy(rec *Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("container %q: encode state: %w", rec.ID, err)
	}
	return r.writeAtomic(rec.ID, stateFile, b)
}

// writeAtomic replaces file name in the container's state directory: a
// reader sees the old content or the new, never a part.
func (r *Runtime) writeAtomic(id, name string, b []byte) error {
	if err := r.writeTemp(id, name, b); err != nil {
		return err
	}
	return r.commitTemp(id, name)
}

// writeAtomicPath replaces the file at path with b, through a temporary
// file beside it.
func writeAtomicPath(path string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := openat.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeTemp writes b beside file name, for commitTemp to put in place.
func (r *Runtime) writeTemp(id, name string, b []byte) error {
	if err := openat.WriteFile(filepath.Join(r.dir(id), "."+name), b, 0o600); err != nil {
		return fmt.Errorf("container %q: write %s: %w", id, name, err)
	}
	return nil
}

// commitTemp renames what writeTemp wrote to name.
func (r *Runtime) commitTemp(id, name string) error {
	dir := r.dir(id)
	if err := os.Rename(filepath.Join(dir, "."+name), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("container %q: write %s: %w", id, name, err)
	}
	return nil
}

// removeStateDir removes a container's state directory. What the runtime
// puts there is known: removing those names and then the directory spares
// os.RemoveAll's directory reads (and the poller it starts, in a process
// that has no other use for it). Anything else there takes RemoveAll.
func (r *Runtime) removeStateDir(id string) error {
	dir := r.dir(id)
	for _, name := range []string{stateFile, specFile, fifoFile, "." + stateFile, "." + specFile} {
		unix.Unlinkat(unix.AT_FDCWD, filepath.Join(dir, name), 0)
	}
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return os.RemoveAll(dir)
}

// alive reports whether rec's init is still the process it started, and not
// a zombie.
func (rec *Record) alive() bool {
	if rec.Pid <= 0 {
		return false
	}
	st, state, err := procStat(rec.Pid)
	return err == nil && st == rec.StartTime && state != 'Z' && state != 'X'
}

// Status derives the container's status from the record and the process.
func (r *Runtime) status(rec *Record) string {
	if !rec.alive() {
		return string(specs.StateStopped)
	}
	// start removes the fifo as it releases init.
	if _, err := os.Lstat(filepath.Join(r.dir(rec.ID), fifoFile)); err == nil {
		return string(specs.StateCreated)
	}
	if rec.Paused {
		return "paused"
	}
	return string(specs.StateRunning)
}

// procStat returns a process's start time and state letter from
// /proc/<pid>/stat. The comm field may hold spaces and parentheses, so parse
// from the last ')'.
func procStat(pid int) (uint64, byte, error) {
	b, err := openat.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+2:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return st, f[0][0], nil
}

// State is the runtime-spec state of a container.
func (r *Runtime) State(id string) (*specs.State, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return r.specState(rec), nil
}

func (r *Runtime) specState(rec *Record) *specs.State {
	st := &specs.State{
		Version: specs.Version,
		ID:      rec.ID,
		Status:  specs.ContainerState(r.status(rec)),
		Bundle:  rec.Bundle,
	}
	st.Annotations = rec.Annotations
	if st.Status != specs.StateStopped {
		st.Pid = rec.Pid
	}
	return st
}

// Info is one line of `list`.
type Info struct {
	specs.State
	Created time.Time
	Owner   string
}

// List returns every container under the root, sorted by ID.
func (r *Runtime) List() ([]Info, error) {
	ents, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.Root, err)
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		rec, err := r.load(e.Name())
		if err != nil {
			continue // a container being created or deleted right now
		}
		owner := "root"
		var st unix.Stat_t
		if unix.Stat(r.dir(rec.ID), &st) == nil && st.Uid != 0 {
			owner = "#" + strconv.Itoa(int(st.Uid))
		}
		out = append(out, Info{State: *r.specState(rec), Created: rec.Created, Owner: owner})
	}
	return out, nil
}

// Spec returns the spec a container was created with.
func (r *Runtime) Spec(id string) (*specs.Spec, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return r.fullSpec(rec)
}
