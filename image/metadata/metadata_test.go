package metadata

import (
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
