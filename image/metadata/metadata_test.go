package metadata

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

func TestNamesAndImages(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := digest.FromString("a"), digest.FromString("b")
	m := ocispec.Descriptor{Digest: digest.FromString("m")}
	steps := []struct {
		name string
		do   func() error
		want map[digest.Digest][]string
	}{
		{"put a", func() error { return s.Put(a, m, "x:1", "x:2") }, map[digest.Digest][]string{a: {"x:1", "x:2"}}},
		{"put b moves x:2", func() error { return s.Put(b, m, "x:2") }, map[digest.Digest][]string{a: {"x:1"}, b: {"x:2"}}},
		{"tag", func() error { return s.Tag(b, "y:1") }, map[digest.Digest][]string{a: {"x:1"}, b: {"x:2", "y:1"}}},
		{"untag leaves dangling", func() error { _, err := s.Untag("x:1"); return err }, map[digest.Digest][]string{a: nil, b: {"x:2", "y:1"}}},
		{"delete", func() error { return s.Delete(b) }, map[digest.Digest][]string{a: nil}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		list, _ := s.List()
		if len(list) != len(st.want) {
			t.Fatalf("%s: %d images", st.name, len(list))
		}
		for _, r := range list {
			if len(r.Names) != len(st.want[r.ID]) {
				t.Fatalf("%s: %s names %v", st.name, r.ID, r.Names)
			}
		}
	}
	if _, err := s.Resolve("y:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted name resolves: %v", err)
	}
	if err := s.Tag(b, "z"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tag of missing image: %v", err)
	}
}

// TestSchemaVersions opens stores written with each schema version: older
// ones are upgraded in place with their names intact, newer ones refused.
func TestSchemaVersions(t *testing.T) {
	id := digest.FromString("img")
	rec := []byte(`{"manifest":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("m").String() + `","size":2},"created":"2026-01-01T00:00:00Z"}`)
	names := []string{"docker.io/library/x:1", "docker.io/library/x@" + digest.FromString("idx").String()}
	for _, tc := range []struct {
		version string
		wantErr bool
	}{
		{"1", false},
		{"2", false},
		{"3", true},
	} {
		t.Run("v"+tc.version, func(t *testing.T) {
			dir := t.TempDir()
			db, err := bolt.Open(filepath.Join(dir, "images.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				v1, _ := tx.CreateBucket(bV1)
				v1.Put(kVersion, []byte(tc.version))
				images, _ := v1.CreateBucket(bImages)
				images.Put([]byte(id), rec)
				nb, _ := v1.CreateBucket(bNames)
				for _, n := range names {
					nb.Put([]byte(n), []byte(id))
				}
				return nil
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir)
			if tc.wantErr {
				if err == nil {
					s.Close()
					t.Fatal("newer schema opened")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var v string
			s.db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket(bV1).Get(kVersion)); return nil })
			if v != schemaVersion {
				t.Fatalf("version %q after open", v)
			}
			r, err := s.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(r.Names, " ") != strings.Join(names, " ") {
				t.Fatalf("names %v, want %v", r.Names, names)
			}
			if got, err := s.Resolve(names[1]); err != nil || got != id {
				t.Fatalf("resolve digest ref: %s, %v", got, err)
			}
		})
	}
}
