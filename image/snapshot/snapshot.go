// Package snapshot keeps layer snapshots as overlayfs directories, keyed by
// chain ID for committed layers and by caller keys for active (writable)
// and view (read-only) snapshots.
//
// Layout under root:
//
//	metadata.db              bbolt, schema below
//	snapshots/<id>/fs        the layer's files (overlay upperdir / lowerdir)
//	snapshots/<id>/work      overlay workdir (active snapshots)
//	l/<short>                symlink to ../snapshots/<id>/fs: short lowerdir
//	                         names keep 100+ layer option strings in a page
//
// The bbolt schema (schema version in v1/version):
//
//	v1/
//	├── version                 "1"
//	└── snapshots/
//	    └── <key>               JSON record: id, kind, parent key, link, created
//
// A snapshot directory exists before its record (crash: orphan dir, removed
// by Open) and its record is deleted before its directory (crash: orphan dir
// again), so a record never points at a missing or half-written directory.
package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/internal/topdir"
)

// Kind of a snapshot.
type Kind string

const (
	Committed Kind = "committed"
	Active    Kind = "active"
	View      Kind = "view"
)

// ErrNotFound, ErrExists and ErrInUse classify snapshot errors.
var (
	ErrNotFound = errors.New("snapshot not found")
	ErrExists   = errors.New("snapshot already exists")
	ErrInUse    = errors.New("snapshot in use")
)

// Info describes a snapshot.
type Info struct {
	Key     string    `json:"-"`
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Parent  string    `json:"parent,omitempty"`
	Link    string    `json:"link"`
	Created time.Time `json:"created"`
}

// Usage is the disk use of a snapshot's own directory.
type Usage struct {
	Size   int64
	Inodes int64
}

// Snapshotter manages overlay snapshots under one root.
type Snapshotter struct {
	root string
	db   *bolt.DB
	mu   sync.Mutex // serializes directory work with db updates
}

var (
	bucketV1        = []byte("v1")
	bucketSnapshots = []byte("snapshots")
	keyVersion      = []byte("version")
)

// Open opens the snapshotter at root, creating it, and removes directories
// left by crashes that no record refers to.
func Open(root string) (*Snapshotter, error) {
	// Overlay options are comma separated and lowerdir colon separated.
	if strings.ContainsAny(root, ",:") {
		return nil, fmt.Errorf("snapshotter root %q: ',' and ':' cannot appear in overlay mount options", root)
	}
	for _, d := range []string{"snapshots", "l"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshotter %s: %w", root, err)
		}
	}
	// A snapshot's directory is a tree of its own (its layer, or a
	// container's upper and work directories): ext4 spreads such trees
	// over its block groups (see topdir). A hint: failing, it costs
	// only speed.
	_ = topdir.Mark(filepath.Join(root, "snapshots"))
	// No freelist in the file (rebuilt by a scan at open, as etcd does):
	// one page less to write at each commit.
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bolt.Options{Timeout: 10 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("snapshotter db: locked by another process (one engine per data root): %w", err)
		}
		return nil, fmt.Errorf("snapshotter db: %w", err)
	}
	s := &Snapshotter{root: root, db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		v1, err := tx.CreateBucketIfNotExists(bucketV1)
		if err != nil {
			return err
		}
		if v := v1.Get(keyVersion); v != nil && string(v) != "1" {
			return fmt.Errorf("unknown schema version %q", v)
		}
		if err := v1.Put(keyVersion, []byte("1")); err != nil {
			return err
		}
		_, err = v1.CreateBucketIfNotExists(bucketSnapshots)
		return err
	})
	if err == nil {
		err = s.cleanOrphans()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("snapshotter %s: %w", root, err)
	}
	return s, nil
}

// Root returns the snapshotter's directory.
func (s *Snapshotter) Root() string { return s.root }

// Close releases the database.
func (s *Snapshotter) Close() error { return s.db.Close() }

func (s *Snapshotter) dir(id string) string { return filepath.Join(s.root, "snapshots", id) }

func (s *Snapshotter) cleanOrphans() error {
	known := map[string]bool{}
	links := map[string]bool{}
	var extracts []string
	s.walk(func(i Info) error {
		if strings.HasPrefix(i.Key, "extract-") && i.Kind == Active {
			extracts = append(extracts, i.Key) // an Apply cut short by a crash
			return nil
		}
		known[i.ID] = true
		links[i.Link] = true
		return nil
	})
	for _, k := range extracts {
		if err := s.Remove(context.Background(), k); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !known[e.Name()] {
			if err := removeDir(s.dir(e.Name())); err != nil {
				return err
			}
		}
	}
	ls, _ := os.ReadDir(filepath.Join(s.root, "l"))
	for _, e := range ls {
		if !links[e.Name()] {
			os.Remove(filepath.Join(s.root, "l", e.Name()))
		}
	}
	return nil
}

// removeDir deletes a snapshot directory; layer dirs hold immutable-looking
// but ordinary files, so plain RemoveAll works (it never follows symlinks).
func removeDir(p string) error {
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

func (s *Snapshotter) walk(fn func(Info) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketV1).Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			var i Info
			if err := json.Unmarshal(v, &i); err != nil {
				return fmt.Errorf("snapshot %q record: %w", k, err)
			}
			i.Key = string(k)
			return fn(i)
		})
	})
}

func get(tx *bolt.Tx, key string) (Info, error) {
	v := tx.Bucket(bucketV1).Bucket(bucketSnapshots).Get([]byte(key))
	if v == nil {
		return Info{}, fmt.Errorf("snapshot %q: %w", key, ErrNotFound)
	}
	var i Info
	if err := json.Unmarshal(v, &i); err != nil {
		return Info{}, fmt.Errorf("snapshot %q record: %w", key, err)
	}
	i.Key = key
	return i, nil
}

func put(tx *bolt.Tx, i Info) error {
	v, err := json.Marshal(i)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketV1).Bucket(bucketSnapshots).Put([]byte(i.Key), v)
}

// Stat returns a snapshot's record.
func (s *Snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	var i Info
	err := s.db.View(func(tx *bolt.Tx) (err error) { i, err = get(tx, key); return })
	return i, err
}

// Exists tells whether a snapshot key exists.
func (s *Snapshotter) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// Walk calls fn for every snapshot.
func (s *Snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	return s.walk(fn)
}

// newDir creates a fresh snapshot directory. Its short link (only a
// committed snapshot, a lower layer, needs one) is made by Commit.
func (s *Snapshotter) newDir(tx *bolt.Tx, withWork bool) (id string, err error) {
	seq, err := tx.Bucket(bucketV1).Bucket(bucketSnapshots).NextSequence()
	if err != nil {
		return "", err
	}
	id = strconv.FormatUint(seq, 10)
	d := s.dir(id)
	// A previous process may have crashed after creating this id before
	// its tx committed (the sequence did not advance): start clean. Tried
	// as a plain mkdir first: the usual case costs one system call, not a
	// failed RemoveAll's five.
	err = os.Mkdir(d, 0o755)
	if errors.Is(err, fs.ErrExist) {
		if err = removeDir(d); err == nil {
			err = os.Mkdir(d, 0o755)
		}
	}
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(filepath.Join(d, "fs"), 0o755); err != nil {
		removeDir(d)
		return "", err
	}
	if withWork {
		if err := os.Mkdir(filepath.Join(d, "work"), 0o700); err != nil {
			return "", err
		}
	}
	return id, nil
}

// newLink makes the short link of snapshot id, for lowerdir options.
func (s *Snapshotter) newLink(id string) (string, error) {
	var b [10]byte
	rand.Read(b[:])
	link := base32.StdEncoding.EncodeToString(b[:])[:12]
	if err := os.Symlink(filepath.Join("..", "snapshots", id, "fs"), filepath.Join(s.root, "l", link)); err != nil {
		return "", err
	}
	return link, nil
}

// create records a new active or view snapshot on parent, and returns it
// with its committed ancestors, nearest first (read in the same
// transaction: its mounts need no second one).
func (s *Snapshotter) create(key, parent string, kind Kind) (Info, []Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var info Info
	var parents []Info
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := get(tx, key); err == nil {
			return fmt.Errorf("snapshot %q: %w", key, ErrExists)
		}
		if parent != "" {
			var err error
			if parents, err = s.chain(tx, parent); err != nil {
				return err
			}
			if p := parents[0]; p.Kind != Committed {
				return fmt.Errorf("parent %q is %s, not committed", parent, p.Kind)
			}
		}
		id, err := s.newDir(tx, kind == Active)
		if err != nil {
			return err
		}
		info = Info{Key: key, ID: id, Kind: kind, Parent: parent, Created: time.Now().UTC()}
		if err := put(tx, info); err != nil {
			s.removeFiles(info)
			return err
		}
		return nil
	})
	if err != nil {
		return Info{}, nil, fmt.Errorf("create snapshot %q: %w", key, err)
	}
	return info, parents, nil
}

func (s *Snapshotter) removeFiles(i Info) error {
	if i.Link != "" { // not yet committed: no link (older versions made one)
		os.Remove(filepath.Join(s.root, "l", i.Link))
	}
	return removeDir(s.dir(i.ID))
}

// Prepare creates a writable snapshot key on top of committed parent ("" for
// none) and returns the mounts for its root filesystem.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]Mount, error) {
	info, parents, err := s.create(key, parent, Active)
	if err != nil {
		return nil, err
	}
	return s.mounts(info, parents), nil
}

// View creates a read-only snapshot of parent and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string) ([]Mount, error) {
	if parent == "" {
		return nil, fmt.Errorf("view %q: no parent", key)
	}
	info, parents, err := s.create(key, parent, View)
	if err != nil {
		return nil, err
	}
	return s.mounts(info, parents), nil
}

// chain returns the short links of key's committed ancestors, nearest first.
func (s *Snapshotter) chain(tx *bolt.Tx, parent string) ([]Info, error) {
	var out []Info
	for parent != "" {
		p, err := get(tx, parent)
		if err != nil {
			return nil, fmt.Errorf("parent chain: %w", err)
		}
		out = append(out, p)
		parent = p.Parent
	}
	return out, nil
}

// Mounts returns the mounts of an active or view snapshot.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var info Info
	var parents []Info
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		if info, err = get(tx, key); err != nil {
			return err
		}
		parents, err = s.chain(tx, info.Parent)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.mounts(info, parents), nil
}

func (s *Snapshotter) mounts(info Info, parents []Info) []Mount {
	fsDir := filepath.Join(s.dir(info.ID), "fs")
	switch {
	case info.Kind == Committed:
		return []Mount{{Type: "bind", Source: fsDir, Options: []string{"ro", "rbind"}}}
	case len(parents) == 0:
		return []Mount{{Type: "bind", Source: fsDir, Options: []string{"rw", "rbind"}}}
	case info.Kind == View && len(parents) == 1:
		return []Mount{{Type: "bind", Source: filepath.Join(s.dir(parents[0].ID), "fs"), Options: []string{"ro", "rbind"}}}
	}
	m := s.overlay(info, parents, false)
	if size := len(strings.Join(m.Options, ",")); size >= unix.Getpagesize() {
		m = s.overlay(info, parents, true)
	}
	return []Mount{m}
}

// overlay builds the overlay mount; relative uses the short links relative
// to the root, the form that fits many layers in one page.
func (s *Snapshotter) overlay(info Info, parents []Info, relative bool) Mount {
	base := s.root
	if relative {
		base = ""
	}
	lowers := make([]string, len(parents))
	for i, p := range parents {
		lowers[i] = filepath.Join(base, "l", p.Link)
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(lowers, ":")}}
	if relative {
		m.Dir = s.root
	}
	if info.Kind == Active {
		d := filepath.Join(base, "snapshots", info.ID)
		m.Options = append(m.Options, "upperdir="+filepath.Join(d, "fs"), "workdir="+filepath.Join(d, "work"))
	}
	return m
}

// Commit turns active snapshot key into committed snapshot name.
func (s *Snapshotter) Commit(ctx context.Context, name, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var work, link string
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := get(tx, name); err == nil {
			return fmt.Errorf("snapshot %q: %w", name, ErrExists)
		}
		i, err := get(tx, key)
		if err != nil {
			return err
		}
		if i.Kind != Active {
			return fmt.Errorf("snapshot %q is %s, not active", key, i.Kind)
		}
		if err := tx.Bucket(bucketV1).Bucket(bucketSnapshots).Delete([]byte(key)); err != nil {
			return err
		}
		work = filepath.Join(s.dir(i.ID), "work")
		if i.Link == "" {
			if link, err = s.newLink(i.ID); err != nil {
				return err
			}
			i.Link = link
		}
		i.Key, i.Kind = name, Committed
		return put(tx, i)
	})
	if err != nil {
		if link != "" {
			os.Remove(filepath.Join(s.root, "l", link))
		}
		return fmt.Errorf("commit snapshot %q as %q: %w", key, name, err)
	}
	os.RemoveAll(work)
	return nil
}

// Apply creates committed snapshot name on parent by letting fill write the
// layer's files into dir; lowers are the parent chain's directories, topmost
// first, for checks. If name already exists, fill is not called.
func (s *Snapshotter) Apply(ctx context.Context, name, parent string, fill func(dir string, lowers []string) error) error {
	if _, err := s.Stat(ctx, name); err == nil {
		return nil
	}
	key := "extract-" + name + "-" + randHex()
	info, _, err := s.create(key, parent, Active)
	if err != nil {
		return err
	}
	lowers, err := s.lowerDirs(parent)
	if err == nil {
		err = fill(filepath.Join(s.dir(info.ID), "fs"), lowers)
	}
	if err == nil {
		err = s.Commit(ctx, name, key)
		if errors.Is(err, ErrExists) {
			err = nil // a concurrent Apply of the same layer won
			s.Remove(ctx, key)
		}
		return err
	}
	s.Remove(ctx, key)
	return err
}

// AdoptDir makes committed snapshot name on parent from an existing layer
// directory (as filled by an unpacker before the parent was known), moving
// it in by rename. dir must be on the snapshotter's filesystem.
func (s *Snapshotter) AdoptDir(ctx context.Context, name, parent, dir string) error {
	adopted := false
	err := s.Apply(ctx, name, parent, func(fsDir string, _ []string) error {
		if err := os.Remove(fsDir); err != nil {
			return err
		}
		if err := os.Rename(dir, fsDir); err != nil {
			return err
		}
		adopted = true
		return nil
	})
	if !adopted {
		// Already there (a concurrent pull won) or failed: dir is ours to drop.
		os.RemoveAll(dir)
	}
	return err
}

// StagingDir returns a new empty directory on the snapshotter's filesystem
// for AdoptDir; the caller removes it if it is never adopted. Open removes
// forgotten ones.
func (s *Snapshotter) StagingDir() (string, error) {
	d := filepath.Join(s.root, "snapshots", "staging-"+randHex())
	if err := os.Mkdir(d, 0o755); err != nil {
		return "", fmt.Errorf("staging dir: %w", err)
	}
	return d, nil
}

func randHex() string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

// LowerDirs returns the fs directories of committed snapshot parent and its
// ancestors, topmost first, for checks on a layer about to be adopted.
func (s *Snapshotter) LowerDirs(parent string) ([]string, error) { return s.lowerDirs(parent) }

func (s *Snapshotter) lowerDirs(parent string) ([]string, error) {
	var parents []Info
	err := s.db.View(func(tx *bolt.Tx) (err error) { parents, err = s.chain(tx, parent); return })
	dirs := make([]string, len(parents))
	for i, p := range parents {
		dirs[i] = filepath.Join(s.dir(p.ID), "fs")
	}
	return dirs, err
}

// Remove deletes a snapshot that no other snapshot has as parent. Its
// files go after its record's commit, outside the lock: once the record is
// gone nothing refers to them (and Open removes them if a crash came
// first), so concurrent removals and creates need not wait for them.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	info, err := s.removeRecord(key)
	if err != nil {
		return err
	}
	return s.removeFiles(info)
}

func (s *Snapshotter) removeRecord(key string) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var info Info
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if info, err = get(tx, key); err != nil {
			return err
		}
		b := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
		if info.Kind != Committed {
			// Only a committed snapshot can be a parent (see create): a
			// container's is removed without a scan of every snapshot,
			// which cost a decode per running container.
			return b.Delete([]byte(key))
		}
		err = b.ForEach(func(k, v []byte) error {
			var c Info
			if json.Unmarshal(v, &c) == nil && c.Parent == key {
				return fmt.Errorf("snapshot %q is the parent of %q: %w", key, k, ErrInUse)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return Info{}, fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	return info, nil
}

// GC removes committed snapshots that are neither in keep nor an ancestor
// of a kept, active or view snapshot. It returns the removed keys.
func (s *Snapshotter) GC(ctx context.Context, keep map[string]bool) ([]string, error) {
	all := map[string]Info{}
	if err := s.walk(func(i Info) error { all[i.Key] = i; return nil }); err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for k, i := range all {
		if keep[k] || i.Kind != Committed {
			for p := k; p != "" && !live[p]; p = all[p].Parent {
				live[p] = true
			}
		}
	}
	// Children first, so each Remove finds no child left.
	var removed []string
	for len(all) > 0 {
		progress := false
		for k := range all {
			if live[k] {
				delete(all, k)
				continue
			}
			if hasChild(all, k) {
				continue
			}
			if err := s.Remove(ctx, k); err != nil {
				return removed, err
			}
			removed = append(removed, k)
			delete(all, k)
			progress = true
		}
		if !progress {
			break
		}
	}
	return removed, nil
}

func hasChild(all map[string]Info, key string) bool {
	for _, i := range all {
		if i.Parent == key {
			return true
		}
	}
	return false
}

// Usage returns the disk use of the snapshot's own layer directory.
func (s *Snapshotter) Usage(ctx context.Context, key string) (Usage, error) {
	i, err := s.Stat(ctx, key)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	seen := map[uint64]bool{}
	err = filepath.WalkDir(filepath.Join(s.dir(i.ID), "fs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if seen[st.Ino] {
			return nil // hard link counted once
		}
		seen[st.Ino] = true
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %q: %w", key, err)
	}
	return u, nil
}
