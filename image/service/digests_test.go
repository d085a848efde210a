package service

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// TestRepoDigestsRemove: digest references resolve, show as RepoDigests
// (not tags), and rmi treats them as Docker does: removing a repository's
// last tag drops its digest references too, removing a digest reference
// only that one, and an ID deletes an image whose names are one
// repository's with at most one tag.
func TestRepoDigestsRemove(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	d1, d2 := digest.FromString("manifest-1"), digest.FromString("index-2")
	const app, other = "example.com/app", "example.com/other"
	tests := []struct {
		name      string
		names     []string // besides app:1, which the archive carries
		rm        string
		force     bool
		untagged  []string
		deleted   bool
		remaining []string
		err       error
	}{
		{"tag takes its repo's digests", []string{app + "@" + d1.String(), app + "@" + d2.String()}, app + ":1", false,
			[]string{app + ":1", app + "@" + d1.String(), app + "@" + d2.String()}, true, nil, nil},
		{"tag keeps digests of a repo still tagged", []string{app + ":2", app + "@" + d1.String()}, app + ":1", false,
			[]string{app + ":1"}, false, []string{app + ":2", app + "@" + d1.String()}, nil},
		{"tag keeps other repos' digests", []string{other + "@" + d1.String()}, app + ":1", false,
			[]string{app + ":1"}, false, []string{other + "@" + d1.String()}, nil},
		{"digest ref untags only itself", []string{app + "@" + d1.String()}, app + "@" + d1.String(), false,
			[]string{app + "@" + d1.String()}, false, []string{app + ":1"}, nil},
		{"digest ref with tag and digest", []string{app + "@" + d1.String()}, "example.com/app:9@" + d1.String(), false,
			[]string{app + "@" + d1.String()}, false, []string{app + ":1"}, nil},
		{"id: one repo and one tag", []string{app + "@" + d1.String()}, "ID", false,
			[]string{app + ":1", app + "@" + d1.String()}, true, nil, nil},
		{"id: two tags need force", []string{app + ":2"}, "ID", false, nil, false, nil, ErrConflict},
		{"id: two repos need force", []string{other + "@" + d1.String()}, "ID", false, nil, false, nil, ErrConflict},
		{"id: forced", []string{app + ":2"}, "ID", true, []string{app + ":1", app + ":2"}, true, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, t.TempDir(), Options{})
			ti := baseImage(t)
			if _, err := s.Load(ctx, bytes.NewReader(dockerArchive(t, ti, app+":1"))); err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.names {
				if err := s.meta.Tag(ti.id(), n); err != nil {
					t.Fatal(err)
				}
			}
			// Every digest reference resolves, and is listed apart from tags.
			img, err := s.Inspect(ctx, app+":1")
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.names {
				if !isDigestRef(n) {
					continue
				}
				if got, err := s.Inspect(ctx, n); err != nil || got.ID != ti.id() {
					t.Fatalf("inspect %s: %v", n, err)
				}
				if !slices.Contains(img.RepoDigests, n) || slices.Contains(img.Names, n) {
					t.Fatalf("RepoDigests %v, Names %v: want %s a digest", img.RepoDigests, img.Names, n)
				}
			}
			rm := tc.rm
			if rm == "ID" {
				rm = ti.id().Encoded()[:12]
			}
			out, err := s.Remove(ctx, rm, tc.force)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Remove: %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(slices.Values(out.Untagged)); !slices.Equal(got, tc.untagged) {
				t.Errorf("untagged %v, want %v", got, tc.untagged)
			}
			if (len(out.Deleted) == 1) != tc.deleted {
				t.Errorf("deleted %v, want deleted=%v", out.Deleted, tc.deleted)
			}
			if tc.deleted {
				return
			}
			img, err = s.Inspect(ctx, ti.id().String())
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(slices.Values(append(img.Names, img.RepoDigests...))); !slices.Equal(got, tc.remaining) {
				t.Errorf("remaining names %v, want %v", got, tc.remaining)
			}
		})
	}
}
