package service

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestHistory(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{})
	ti := newTestImage(t, "sh", layer(t, entry{name: "a", body: "a"}), layer(t, entry{name: "b", body: "bb"}))
	// An empty-layer step between the two layers, as ENV makes.
	ti.cfg.History = []ocispec.History{{CreatedBy: "ADD a"}, {CreatedBy: "ENV x=1", EmptyLayer: true}, {CreatedBy: "ADD b", Comment: "c"}}
	ti = rebuild(t, ti)
	if _, err := s.Load(ctx, bytes.NewReader(dockerArchive(t, ti, "hist:1"))); err != nil {
		t.Fatal(err)
	}
	h, err := s.History(ctx, "hist:1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ADD b", "ENV x=1", "ADD a"}
	if len(h) != len(want) {
		t.Fatalf("history %+v", h)
	}
	for i, w := range want {
		if h[i].CreatedBy != w {
			t.Errorf("entry %d: %q, want %q", i, h[i].CreatedBy, w)
		}
	}
	if h[0].ID != ti.id() || len(h[0].Names) != 1 || h[1].ID != "" || h[0].Comment != "c" {
		t.Errorf("top entry %+v, second %+v", h[0], h[1])
	}
	if h[1].Size != 0 || h[0].Size == 0 || h[2].Size == 0 {
		t.Errorf("sizes %d %d %d", h[0].Size, h[1].Size, h[2].Size)
	}
	if _, err := s.History(ctx, "nope"); err == nil {
		t.Error("history of a missing image succeeded")
	}
}

func TestPruneImages(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	s := open(t, root, Options{})
	named := newTestImage(t, "named", layer(t, entry{name: "n", body: "n"}))
	if _, err := s.Load(ctx, bytes.NewReader(dockerArchive(t, named, "keep:1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, bytes.NewReader(dockerArchive(t, baseImage(t)))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		all     bool
		deleted int
	}{{false, 1}, {false, 0}, {true, 1}} {
		rm, freed, err := s.PruneImages(ctx, tc.all)
		if err != nil || len(rm) != tc.deleted || (tc.deleted > 0) != (freed > 0) {
			t.Fatalf("prune all=%v: %v freed %d err %v", tc.all, rm, freed, err)
		}
	}
	assertEmpty(t, root)
}

// rebuild re-encodes ti's config after a change to ti.cfg.
func rebuild(t *testing.T, ti testImage) testImage {
	t.Helper()
	b, err := json.Marshal(ti.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ti.config = b
	return ti
}
