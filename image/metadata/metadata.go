// Package metadata records which images exist and what names point at them.
//
// The bbolt schema (root/images.db), version in v1/version:
//
//	v1/
//	├── version                 "2"
//	├── images/
//	│   └── <image id>          JSON Record: manifest descriptor, created
//	│                           (image id = config digest, as Docker's)
//	└── names/
//	    └── <normalized ref>    image id; a ref is a tag (name:tag) or a
//	                            repository digest (name@sha256:…, the
//	                            manifest or index digest a registry serves
//	                            the image under, as Docker's RepoDigests)
//
// Schema versions: "1" recorded digest references only for pulls by digest;
// "2" records one on every pull and push. A version-1 store is valid as
// version 2 (its digest references were already repository digests) and is
// upgraded in place by writing the new version; a store of a newer version
// is refused, so an older binary never misreads it.
//
// An image record is written only after all its blobs and snapshots are
// committed and synced, so a listed image is always complete.
package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// ErrNotFound is wrapped by errors about unknown names and images.
var ErrNotFound = errors.New("image not found")

// Record is one image.
type Record struct {
	ID       digest.Digest      `json:"-"`
	Manifest ocispec.Descriptor `json:"manifest"`
	Created  time.Time          `json:"created"`
	Names    []string           `json:"-"` // filled on read
}

// Store is the image database.
type Store struct {
	db *bolt.DB
}

var (
	bV1      = []byte("v1")
	bImages  = []byte("images")
	bNames   = []byte("names")
	kVersion = []byte("version")
)

// schemaVersion is the version Open writes; see the package comment.
const schemaVersion = "2"

// Open opens root/images.db, creating it.
func Open(root string) (*Store, error) {
	db, err := bolt.Open(filepath.Join(root, "images.db"), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("image db: locked by another process (one engine per data root): %w", err)
		}
		return nil, fmt.Errorf("image db: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		v1, err := tx.CreateBucketIfNotExists(bV1)
		if err != nil {
			return err
		}
		switch v := v1.Get(kVersion); string(v) {
		case "", "1", schemaVersion:
		default:
			return fmt.Errorf("unknown schema version %q (this binary knows up to %s)", v, schemaVersion)
		}
		if err := v1.Put(kVersion, []byte(schemaVersion)); err != nil {
			return err
		}
		if _, err := v1.CreateBucketIfNotExists(bImages); err != nil {
			return err
		}
		_, err = v1.CreateBucketIfNotExists(bNames)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("image db: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func buckets(tx *bolt.Tx) (images, names *bolt.Bucket) {
	v1 := tx.Bucket(bV1)
	return v1.Bucket(bImages), v1.Bucket(bNames)
}

// Put records image id with its manifest and points names at it, moving
// names that pointed at another image.
func (s *Store) Put(id digest.Digest, manifest ocispec.Descriptor, names ...string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		images, nb := buckets(tx)
		rec := Record{Manifest: manifest, Created: time.Now().UTC()}
		if old := images.Get([]byte(id)); old != nil {
			var prev Record
			if json.Unmarshal(old, &prev) == nil {
				rec.Created = prev.Created
			}
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := images.Put([]byte(id), v); err != nil {
			return err
		}
		for _, n := range names {
			if err := nb.Put([]byte(n), []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tag points name at an existing image.
func (s *Store) Tag(id digest.Digest, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		images, nb := buckets(tx)
		if images.Get([]byte(id)) == nil {
			return fmt.Errorf("image %s: %w", id, ErrNotFound)
		}
		return nb.Put([]byte(name), []byte(id))
	})
}

// Untag removes name and returns the image it pointed at.
func (s *Store) Untag(name string) (digest.Digest, error) {
	var id digest.Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		_, nb := buckets(tx)
		v := nb.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("name %q: %w", name, ErrNotFound)
		}
		id = digest.Digest(v)
		return nb.Delete([]byte(name))
	})
	return id, err
}

// Resolve returns the image id a name points at.
func (s *Store) Resolve(name string) (digest.Digest, error) {
	var id digest.Digest
	err := s.db.View(func(tx *bolt.Tx) error {
		_, nb := buckets(tx)
		v := nb.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("name %q: %w", name, ErrNotFound)
		}
		id = digest.Digest(v)
		return nil
	})
	return id, err
}

// Get returns one image with its names.
func (s *Store) Get(id digest.Digest) (Record, error) {
	all, err := s.List()
	if err != nil {
		return Record{}, err
	}
	for _, r := range all {
		if r.ID == id {
			return r, nil
		}
	}
	return Record{}, fmt.Errorf("image %s: %w", id, ErrNotFound)
}

// List returns all images, names sorted, newest first.
func (s *Store) List() ([]Record, error) {
	byID := map[digest.Digest]*Record{}
	err := s.db.View(func(tx *bolt.Tx) error {
		images, nb := buckets(tx)
		err := images.ForEach(func(k, v []byte) error {
			r := &Record{ID: digest.Digest(k)}
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("image %s record: %w", k, err)
			}
			byID[r.ID] = r
			return nil
		})
		if err != nil {
			return err
		}
		return nb.ForEach(func(k, v []byte) error {
			if r := byID[digest.Digest(v)]; r != nil {
				r.Names = append(r.Names, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(byID))
	for _, r := range byID {
		sort.Strings(r.Names)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Delete removes an image record and every name pointing at it.
func (s *Store) Delete(id digest.Digest) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		images, nb := buckets(tx)
		if images.Get([]byte(id)) == nil {
			return fmt.Errorf("image %s: %w", id, ErrNotFound)
		}
		var names [][]byte
		nb.ForEach(func(k, v []byte) error {
			if digest.Digest(v) == id {
				names = append(names, append([]byte(nil), k...))
			}
			return nil
		})
		for _, n := range names {
			if err := nb.Delete(n); err != nil {
				return err
			}
		}
		return images.Delete([]byte(id))
	})
}
