package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/estiba/estiba/image/archive"
	"github.com/estiba/estiba/image/content"
	"github.com/estiba/estiba/image/unpack"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Progress is one event of a pull or push, for the CLI/API to render.
type Progress struct {
	Layer   digest.Digest
	Status  string // "resolved" (once, no Layer: manifest served), then per layer "exists", "waiting", "downloading", "downloaded", "extracting", "done"
	Current int64  // bytes so far (downloading)
	Total   int64
}

const (
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Pull fetches ref for platform (zero: this machine's linux platform) and
// records it under its normalized name. Layers download concurrently; each
// is unpacked into its own staging directory as soon as its blob is
// verified, overlapping the downloads of the others; the snapshots are then
// committed bottom up. A layer downloaded from its first byte is unpacked
// while it streams in. progress may be nil; it is called from one goroutine
// at a time. A pull killed at any point leaves no listed image, and the next
// pull resumes partial downloads. It returns the image ID.
func (s *Service) Pull(ctx context.Context, ref string, platform ocispec.Platform, progress func(Progress)) (digest.Digest, error) {
	p, err := s.PullImage(ctx, ref, platform, progress)
	return p.ID, err
}

// Pulled is what PullImage stored.
type Pulled struct {
	ID digest.Digest
	// RepoDigest is the repository digest recorded for the image
	// (name@sha256:…, the digest of the manifest or index ref resolved to).
	RepoDigest string
}

// PullImage is Pull, also returning the repository digest it recorded.
func (s *Service) PullImage(ctx context.Context, ref string, platform ocispec.Platform, progress func(Progress)) (Pulled, error) {
	if s.opts.Registry == nil {
		return Pulled{}, errors.New("pull: no registry client configured")
	}
	name, err := Normalize(ref)
	if err != nil {
		return Pulled{}, fmt.Errorf("pull %s: %w: %w", ref, ErrInvalid, err)
	}
	if platform.OS == "" {
		platform = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	p := &puller{s: s, ref: name, reg: s.opts.Registry, report: serialize(progress)}
	img, top, err := p.pull(ctx, platform)
	if err != nil {
		return Pulled{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	// Docker records name@<digest resolved> beside the tag: for a
	// multi-platform image that is the index's digest, which pulls the same
	// image again on this platform.
	repoDigest := digestRef(name, top)
	names := []string{repoDigest}
	if !isDigestRef(name) {
		names = append(names, name)
	}
	if err := s.record([]archive.Image{img}, names...); err != nil {
		return Pulled{}, err
	}
	return Pulled{ID: img.ConfigDesc.Digest, RepoDigest: repoDigest}, nil
}

func serialize(fn func(Progress)) func(Progress) {
	if fn == nil {
		return func(Progress) {}
	}
	var mu sync.Mutex
	return func(p Progress) { mu.Lock(); fn(p); mu.Unlock() }
}

type puller struct {
	s      *Service
	ref    string
	reg    Registry
	report func(Progress)
	top    digest.Digest // what ref resolved to
}

func (p *puller) open(desc ocispec.Descriptor) content.OpenFunc {
	return func(ctx context.Context, off int64) (io.ReadCloser, error) {
		return p.reg.Fetch(ctx, p.ref, desc, off)
	}
}

// small fetches a manifest/config/index into the store and returns it.
func (p *puller) small(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := p.s.fetcher.Fetch(ctx, desc, p.open(desc), nil); err != nil {
		return nil, err
	}
	return archive.ReadBlob(ctx, p.s.content, desc)
}

// pull fetches the image and returns it with the digest p.ref resolved to.
func (p *puller) pull(ctx context.Context, platform ocispec.Platform) (archive.Image, digest.Digest, error) {
	img, err := p.pullDesc(ctx, platform)
	return img, p.top, err
}

func (p *puller) pullDesc(ctx context.Context, platform ocispec.Platform) (archive.Image, error) {
	desc, err := p.reg.Resolve(ctx, p.ref)
	if err != nil {
		return archive.Image{}, err
	}
	p.top = desc.Digest
	b, err := p.small(ctx, desc)
	if err != nil {
		return archive.Image{}, err
	}
	p.report(Progress{Status: "resolved"})
	if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == mediaDockerList {
		if desc, err = choose(b, platform); err != nil {
			return archive.Image{}, err
		}
		if b, err = p.small(ctx, desc); err != nil {
			return archive.Image{}, err
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return archive.Image{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	cb, err := p.small(ctx, m.Config)
	if err != nil {
		return archive.Image{}, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return archive.Image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return archive.Image{}, fmt.Errorf("config lists %d layers, manifest %d", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	if err := p.layers(ctx, m.Layers, cfg.RootFS.DiffIDs); err != nil {
		return archive.Image{}, err
	}
	// The stored manifest is the one pulled, for digest-stable push/save.
	desc.MediaType = or(m.MediaType, ocispec.MediaTypeImageManifest)
	desc.Platform = nil
	return archive.Image{Manifest: desc, Config: cfg, ConfigDesc: m.Config}, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func choose(b []byte, want ocispec.Platform) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("index: %w", err)
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS == want.OS && m.Platform.Architecture == want.Architecture &&
			(want.Variant == "" || m.Platform.Variant == want.Variant) {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for platform %s/%s", want.OS, want.Architecture)
}

type pulledLayer struct {
	staging string
	res     unpack.Result
	ready   bool // snapshot already existed
}

// layers downloads and unpacks all layers concurrently, then commits their
// snapshots in order (each needs its parent committed).
func (p *puller) layers(ctx context.Context, descs []ocispec.Descriptor, diffIDs []digest.Digest) error {
	out := make([]pulledLayer, len(descs))
	defer func() {
		for _, l := range out {
			if l.staging != "" {
				os.RemoveAll(l.staging)
			}
		}
	}()
	chains := make([]string, len(descs))
	parent := ""
	for i, d := range diffIDs {
		chains[i] = archive.ChainID(parent, d)
		parent = chains[i]
	}
	g, gctx := errgroup.WithContext(ctx)
	downloads := make(chan struct{}, p.s.opts.PullConcurrency)
	unpacks := make(chan struct{}, max(1, min(runtime.NumCPU(), 4)))
	for i, desc := range descs {
		if err := checkLayerType(desc); err != nil {
			return err
		}
		g.Go(func() error {
			return p.layer(gctx, desc, diffIDs[i], chains[i], &out[i], downloads, unpacks)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	parent = ""
	for i := range out {
		if !out[i].ready {
			lowers, err := p.s.snaps.LowerDirs(parent)
			if err != nil {
				return err
			}
			if err := unpack.CheckLowers(out[i].res.ImplicitDirs, lowers); err != nil {
				return fmt.Errorf("layer %s: %w", descs[i].Digest, err)
			}
			if err := p.s.snaps.AdoptDir(ctx, chains[i], parent, out[i].staging); err != nil {
				return err
			}
			out[i].staging = ""
		}
		parent = chains[i]
		p.report(Progress{Layer: descs[i].Digest, Status: "done", Total: descs[i].Size})
	}
	return nil
}

func checkLayerType(d ocispec.Descriptor) error {
	switch d.MediaType {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		"application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar":
		return nil
	}
	return fmt.Errorf("layer %s: unsupported media type %q", d.Digest, d.MediaType)
}

func (p *puller) layer(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, chain string,
	out *pulledLayer, downloads, unpacks chan struct{}) error {
	_, blobErr := p.s.content.Info(ctx, desc.Digest)
	if blobErr == nil && p.s.snaps.Exists(ctx, chain) {
		out.ready = true
		p.report(Progress{Layer: desc.Digest, Status: "exists", Total: desc.Size})
		return nil
	}
	p.report(Progress{Layer: desc.Digest, Status: "waiting", Total: desc.Size})
	if err := acquire(ctx, downloads); err != nil {
		return err
	}
	var done int64
	// Fresh downloads unpack as they stream in; the blob's digest is checked
	// at commit, so the unpacked files count only if the fetch succeeds.
	streamed, err := p.s.fetcher.FetchStream(ctx, desc, p.open(desc), func(n int64) {
		done += n
		p.report(Progress{Layer: desc.Digest, Status: "downloading", Current: done, Total: desc.Size})
	}, func(r io.Reader) error {
		return p.unpack(ctx, r, out)
	})
	<-downloads
	if err != nil {
		return err
	}
	p.report(Progress{Layer: desc.Digest, Status: "downloaded", Current: desc.Size, Total: desc.Size})
	if !streamed {
		if p.s.snaps.Exists(ctx, chain) {
			out.ready = true
			return nil
		}
		if err := p.unpackBlob(ctx, desc, out, unpacks); err != nil {
			return err
		}
	}
	if out.res.DiffID != diffID {
		return fmt.Errorf("layer %s: diffID %s, config says %s", desc.Digest, out.res.DiffID, diffID)
	}
	return nil
}

// unpack applies a layer stream into a new staging directory.
func (p *puller) unpack(ctx context.Context, r io.Reader, out *pulledLayer) error {
	staging, err := p.s.snaps.StagingDir()
	if err != nil {
		return err
	}
	out.staging = staging
	out.res, err = unpack.Apply(ctx, r, staging, p.s.opts.Unpack)
	if err == nil {
		_, err = io.Copy(io.Discard, r) // bytes after the compressed stream
	}
	return err
}

// unpackBlob unpacks a layer already in the content store.
func (p *puller) unpackBlob(ctx context.Context, desc ocispec.Descriptor, out *pulledLayer, unpacks chan struct{}) error {
	if err := acquire(ctx, unpacks); err != nil {
		return err
	}
	defer func() { <-unpacks }()
	p.report(Progress{Layer: desc.Digest, Status: "extracting", Current: desc.Size, Total: desc.Size})
	ra, err := p.s.content.ReaderAt(ctx, desc)
	if err != nil {
		return err
	}
	defer ra.Close()
	if err := p.unpack(ctx, io.NewSectionReader(ra, 0, ra.Size()), out); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	return nil
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
