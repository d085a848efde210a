package service

import (
	"context"
	"time"

	"github.com/estiba/estiba/image/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// HistoryEntry is one step of an image's history, newest first as docker
// history prints it.
type HistoryEntry struct {
	// ID is the image's ID on the newest entry and empty on the others
	// (Docker prints "<missing>": the intermediate images are not stored).
	ID        digest.Digest
	Created   time.Time
	CreatedBy string
	Comment   string
	// Names are the image's names, on the newest entry only.
	Names []string
	// Size is the size of the layer the step made (0 for an empty
	// layer), as its blob is stored.
	Size int64
}

// History returns ref's history from its config, each step paired with the
// layer it made.
func (s *Service) History(ctx context.Context, ref string) ([]HistoryEntry, error) {
	r, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	m, cfg, err := s.manifest(ctx, r.Manifest)
	if err != nil {
		return nil, err
	}
	hist := cfg.History
	if len(hist) == 0 {
		// An imported image may carry no history: one step per layer.
		for range m.Layers {
			hist = append(hist, historyOf(cfg.Created))
		}
	}
	out := make([]HistoryEntry, 0, len(hist))
	layer := 0
	for _, h := range hist {
		e := HistoryEntry{CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer && layer < len(m.Layers) {
			e.Size = m.Layers[layer].Size
			layer++
		}
		out = append(out, e)
	}
	// Newest first, the image's own ID and names on top.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = r.ID
		out[0].Names, _ = splitNames(r.Names)
	}
	return out, nil
}

// PruneImages deletes the images no container uses: only those without
// names (dangling) unless all is set. It returns the deleted IDs with their
// former names and the bytes of blobs freed.
func (s *Service) PruneImages(ctx context.Context, all bool) ([]Removed, int64, error) {
	before, err := s.contentSize(ctx)
	if err != nil {
		return nil, 0, err
	}
	recs, err := s.meta.List()
	if err != nil {
		return nil, 0, err
	}
	var out []Removed
	for _, r := range recs {
		// Dangling, as for docker image prune: no tag (digests don't count).
		if tags, _ := splitNames(r.Names); (len(tags) > 0 && !all) || len(s.users(ctx, r)) > 0 {
			continue
		}
		if err := s.meta.Delete(r.ID); err != nil {
			return out, 0, err
		}
		out = append(out, Removed{Untagged: r.Names, Deleted: []digest.Digest{r.ID}})
	}
	if err := s.collect(ctx); err != nil {
		return out, 0, err
	}
	after, err := s.contentSize(ctx)
	if err != nil {
		return out, 0, err
	}
	return out, max(before-after, 0), nil
}

func (s *Service) contentSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.content.Walk(ctx, func(i content.Info) error {
		n += i.Size
		return nil
	})
	return n, err
}

func historyOf(created *time.Time) ocispec.History {
	return ocispec.History{Created: created}
}
