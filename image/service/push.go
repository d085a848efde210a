package service

import (
	"context"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push uploads image ref (by its name) to its registry: layers, config,
// then the manifest, which tags it.
func (s *Service) Push(ctx context.Context, ref string, progress func(Progress)) error {
	if s.opts.Pusher == nil {
		return errors.New("push: no registry client configured")
	}
	name, err := Normalize(ref)
	if err != nil {
		return err
	}
	if isDigestRef(name) {
		return fmt.Errorf("push %s: cannot push a digest reference: %w", ref, ErrInvalid)
	}
	r, err := s.resolve(name)
	if err != nil {
		return err
	}
	m, _, err := s.manifest(ctx, r.Manifest)
	if err != nil {
		return err
	}
	report := serialize(progress)
	for _, d := range append(append([]ocispec.Descriptor{}, m.Layers...), m.Config, r.Manifest) {
		if err := s.pushBlob(ctx, name, d); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		report(Progress{Layer: d.Digest, Status: "done", Current: d.Size, Total: d.Size})
	}
	// The registry now serves the manifest under its digest: record the
	// repository digest, as docker push does.
	if err := s.meta.Tag(r.ID, digestRef(name, r.Manifest.Digest)); err != nil {
		return fmt.Errorf("push %s: record repository digest: %w", ref, err)
	}
	return nil
}

func (s *Service) pushBlob(ctx context.Context, name string, d ocispec.Descriptor) error {
	ra, err := s.content.ReaderAt(ctx, d)
	if err != nil {
		return err
	}
	defer ra.Close()
	return s.opts.Pusher.Push(ctx, name, d, io.NewSectionReader(ra, 0, ra.Size()))
}
