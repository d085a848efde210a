// Package store is the engine's crash-safe state: container records, the
// name index and user-namespace range allocations, in one bbolt file.
//
// Schema (bucket tree; every write is in one bbolt transaction, possibly
// shared with concurrent writes (group commit), so a kill -9 at any moment
// leaves either the old or the new state, never half of one):
//
//	v1                                  schema version 1
//	├── meta
//	│   └── version      → "1"
//	├── containers
//	│   └── <id>         → JSON Container (config, host config, state)
//	├── names
//	│   └── <name>       → <id>         (unique names; the 409 on clash)
//	└── userns
//	    └── <base>       → <id>         (8-byte big-endian first host id of a
//	                                     65536-id range; one range per container)
//
// A container whose Phase is PhaseCreating was being created when the daemon
// died: the daemon's repair pass on start removes it (see engine.Daemon).
// Only older versions wrote that phase: a record is now written once the
// container's directory and rootfs exist, already ready.
package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout drawn above. A future layout adds a v2 bucket
// and a migration from v1 run once in Open.
const SchemaVersion = "1"

var (
	bucketV1         = []byte("v1")
	bucketMeta       = []byte("meta")
	bucketContainers = []byte("containers")
	bucketNames      = []byte("names")
	bucketUserns     = []byte("userns")
	keyVersion       = []byte("version")
)

// Phase says how far creation got.
type Phase string

const (
	// PhaseCreating was written before the bundle and rootfs existed
	// (older versions; see the package comment).
	PhaseCreating Phase = "creating"
	// PhaseReady is written once the container can be started.
	PhaseReady Phase = "ready"
)

// Status is the lifecycle state, with Docker's names.
type Status string

// Docker's container states.
const (
	StatusCreated    Status = "created"
	StatusRunning    Status = "running"
	StatusPaused     Status = "paused"
	StatusRestarting Status = "restarting"
	StatusRemoving   Status = "removing"
	StatusExited     Status = "exited"
	StatusDead       Status = "dead"
)

// State is a container's runtime state as last recorded.
type State struct {
	Status     Status
	Pid        int
	ExitCode   int
	Error      string    `json:",omitempty"`
	StartedAt  time.Time `json:",omitempty"`
	FinishedAt time.Time `json:",omitempty"`
	// StoppedByUser is set by stop/kill from the API: unless-stopped and
	// always policies then do not restart, and on-failure does not count it.
	StoppedByUser bool `json:",omitempty"`
	// Network of the current run (nil without one).
	Network *NetState     `json:",omitempty"`
	Health  *types.Health `json:",omitempty"`
}

// NetState is a run's network attachment.
type NetState struct {
	Network, IP, Gateway string
	Ports                map[string][]types.PortBinding `json:",omitempty"`
}

// Container is one container's record.
type Container struct {
	ID           string
	Name         string
	Created      time.Time
	Image        string // the reference the user gave
	ImageID      string
	Config       types.Config
	HostConfig   types.HostConfig
	Path         string
	Args         []string
	Phase        Phase
	State        State
	RestartCount int
	// RestartDelay is the backoff used for the last restart, doubled for
	// the next one.
	RestartDelay time.Duration `json:",omitempty"`
	// UsernsBase is the first host uid/gid of the container's private
	// 65536-id range; 0 means the container shares the host's ids.
	UsernsBase uint32 `json:",omitempty"`
	// Connected are the networks added with `network connect` (by name),
	// joined again at every start until disconnected.
	Connected map[string]*types.EndpointSettings `json:",omitempty"`
	// PrimaryDisconnected: the network of --network (or the default
	// bridge) was disconnected with `network disconnect`; starts no longer
	// join it, as with Docker.
	PrimaryDisconnected bool `json:",omitempty"`
}

// Store is an open state file.
type Store struct {
	db *bolt.DB

	mu         sync.Mutex // guards the two fields below
	queue      []*write   // writes waiting for the next commit
	committing bool       // a caller is committing the queue
}

// write is one caller's part of a group commit.
type write struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// Open opens or creates the state file at path and checks its schema.
func Open(path string) (*Store, error) {
	// No freelist in the file (rebuilt by a scan at open, as etcd does):
	// one page less to write at each commit.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		v1, err := tx.CreateBucketIfNotExists(bucketV1)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketMeta, bucketContainers, bucketNames, bucketUserns} {
			if _, err := v1.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := v1.Bucket(bucketMeta)
		if v := meta.Get(keyVersion); v != nil && string(v) != SchemaVersion {
			return fmt.Errorf("schema version %q, this estiba knows %q", v, SchemaVersion)
		}
		return meta.Put(keyVersion, []byte(SchemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init state %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return tx.Bucket(bucketV1).Bucket(name) }

// update runs fn in a write transaction, committed with the writes of
// other callers that arrive meanwhile: each bbolt commit costs two
// fdatasyncs, and concurrent starts would otherwise queue for one commit
// each. A lone caller commits at once, with no added delay (bbolt's Batch
// waits up to 10 ms for company). fn may run more than once: if another
// write of the group fails, the group is rolled back and run again
// without it. Each caller still gets its write all or nothing.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, w)
	if s.committing {
		s.mu.Unlock()
		return <-w.done
	}
	s.committing = true
	for len(s.queue) > 0 {
		group := s.queue
		s.queue = nil
		s.mu.Unlock()
		s.commit(group)
		s.mu.Lock()
	}
	s.committing = false
	s.mu.Unlock()
	return <-w.done
}

// commit runs the group in one transaction; a failing write is answered
// alone and the rest run again without it.
func (s *Store) commit(group []*write) {
	for len(group) > 0 {
		failed, ferr := -1, error(nil)
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, w := range group {
				if err := w.fn(tx); err != nil {
					failed, ferr = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, w := range group {
				w.done <- err
			}
			return
		}
		group[failed].done <- ferr
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// Create stores a new container and claims its name. With userns set it
// also allocates the lowest free 65536-id range at or above firstID.
func (s *Store) Create(c *Container, userns bool, firstID, maxID uint32) error {
	return s.update(func(tx *bolt.Tx) error {
		names := bucket(tx, bucketNames)
		if id := names.Get([]byte(c.Name)); id != nil {
			return fmt.Errorf("the container name %q is already in use by container %q: %w", "/"+c.Name, id, ErrNameInUse)
		}
		if bucket(tx, bucketContainers).Get([]byte(c.ID)) != nil {
			return fmt.Errorf("container id %s exists: %w", c.ID, errdefs.ErrConflict)
		}
		if userns {
			base, err := allocUserns(bucket(tx, bucketUserns), c.ID, firstID, maxID)
			if err != nil {
				return err
			}
			c.UsernsBase = base
		}
		if err := names.Put([]byte(c.Name), []byte(c.ID)); err != nil {
			return err
		}
		return put(tx, c)
	})
}

// ErrNameInUse is Create's error for a name another container has.
var ErrNameInUse = fmt.Errorf("you have to remove (or rename) that container to be able to reuse that name: %w", errdefs.ErrConflict)

// UsernsSize is the number of ids each container gets.
const UsernsSize = 65536

// allocUserns takes the lowest free range: ranges are freed in any order,
// so reusing holes keeps the id space from creeping up to maxID.
func allocUserns(b *bolt.Bucket, id string, firstID, maxID uint32) (uint32, error) {
	next := uint64(firstID)
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		used := binary.BigEndian.Uint64(k)
		if used >= next+UsernsSize {
			break
		}
		if used+UsernsSize > next {
			next = used + UsernsSize
		}
	}
	if next+UsernsSize-1 > uint64(maxID) {
		return 0, fmt.Errorf("no free user namespace range of %d ids below %d", UsernsSize, maxID)
	}
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, next)
	if err := b.Put(key, []byte(id)); err != nil {
		return 0, err
	}
	return uint32(next), nil
}

func put(tx *bolt.Tx, c *Container) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode container %s: %w", c.ID, err)
	}
	return bucket(tx, bucketContainers).Put([]byte(c.ID), data)
}

func get(tx *bolt.Tx, id string) (*Container, error) {
	data := bucket(tx, bucketContainers).Get([]byte(id))
	if data == nil {
		return nil, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode container %s: %w", id, err)
	}
	return &c, nil
}

// Get returns the container with exactly this id.
func (s *Store) Get(id string) (*Container, error) {
	var c *Container
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		c, err = get(tx, id)
		return err
	})
	return c, err
}

// Update applies fn to the stored container and writes the result, in one
// transaction.
func (s *Store) Update(id string, fn func(*Container) error) (*Container, error) {
	var c *Container
	err := s.update(func(tx *bolt.Tx) (err error) {
		if c, err = get(tx, id); err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		return put(tx, c)
	})
	return c, err
}

// UpdateOrDelete applies fn to the stored container and, in one
// transaction, writes the result or, if fn says so, deletes the container
// as Delete does. It returns the container as fn left it and whether it
// was deleted.
func (s *Store) UpdateOrDelete(id string, fn func(*Container) (bool, error)) (*Container, bool, error) {
	var c *Container
	var deleted bool
	err := s.update(func(tx *bolt.Tx) (err error) {
		if c, err = get(tx, id); err != nil {
			return err
		}
		if deleted, err = fn(c); err != nil {
			return err
		}
		if deleted {
			return del(tx, c)
		}
		return put(tx, c)
	})
	return c, deleted, err
}

// Delete removes the container, its name and its id range.
func (s *Store) Delete(id string) error {
	return s.update(func(tx *bolt.Tx) error {
		c, err := get(tx, id)
		if err != nil {
			return err
		}
		return del(tx, c)
	})
}

func del(tx *bolt.Tx, c *Container) error {
	if err := bucket(tx, bucketNames).Delete([]byte(c.Name)); err != nil {
		return err
	}
	if c.UsernsBase != 0 {
		key := make([]byte, 8)
		binary.BigEndian.PutUint64(key, uint64(c.UsernsBase))
		if err := bucket(tx, bucketUserns).Delete(key); err != nil {
			return err
		}
	}
	return bucket(tx, bucketContainers).Delete([]byte(c.ID))
}

// List returns every container, newest first (docker ps order).
func (s *Store) List() ([]*Container, error) {
	var out []*Container
	err := s.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketContainers).ForEach(func(k, _ []byte) error {
			c, err := get(tx, string(k))
			if err == nil {
				out = append(out, c)
			}
			return err
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// Resolve finds a container by full id, name, or unique id prefix, as
// Docker does.
func (s *Store) Resolve(ref string) (string, error) {
	ref = strings.TrimPrefix(ref, "/")
	var id string
	err := s.db.View(func(tx *bolt.Tx) error {
		id = ""
		if ref == "" {
			return fmt.Errorf("empty container reference: %w", errdefs.ErrInvalid)
		}
		if bucket(tx, bucketContainers).Get([]byte(ref)) != nil {
			id = ref
			return nil
		}
		if v := bucket(tx, bucketNames).Get([]byte(ref)); v != nil {
			id = string(v)
			return nil
		}
		c := bucket(tx, bucketContainers).Cursor()
		for k, _ := c.Seek([]byte(ref)); k != nil && strings.HasPrefix(string(k), ref); k, _ = c.Next() {
			if id != "" {
				id = ""
				return fmt.Errorf("multiple containers match %q: %w", ref, errdefs.ErrInvalid)
			}
			id = string(k)
		}
		if id == "" {
			return fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
		}
		return nil
	})
	return id, err
}
