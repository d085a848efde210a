package service

import (
	"maps"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// metaCache keeps decoded manifests and image configs by manifest digest.
// Every container create reads both twice (the image's defaults, then its
// rootfs), and they are content-addressed: a digest's blobs never change,
// so a hit needs no check. Callers reach it only after the image's
// record was resolved (a removed image is not found there first).
type metaCache struct {
	mu sync.Mutex
	m  map[digest.Digest]manifestAndConfig
}

type manifestAndConfig struct {
	m   ocispec.Manifest
	cfg ocispec.Image
}

// metaCacheSize bounds the cache; it starts over when full.
const metaCacheSize = 64

func (c *metaCache) get(d digest.Digest) (ocispec.Manifest, ocispec.Image, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[d]
	if !ok {
		return ocispec.Manifest{}, ocispec.Image{}, false
	}
	return e.m, cloneConfig(e.cfg), true
}

func (c *metaCache) put(d digest.Digest, m ocispec.Manifest, cfg ocispec.Image) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= metaCacheSize {
		c.m = make(map[digest.Digest]manifestAndConfig)
	}
	// Copies of its own, clipped: a caller's append to a slice it got
	// makes a new array rather than writing into the cached one.
	m.Layers = slices.Clip(slices.Clone(m.Layers))
	cfg.RootFS.DiffIDs = slices.Clip(slices.Clone(cfg.RootFS.DiffIDs))
	cfg.History = slices.Clip(slices.Clone(cfg.History))
	c.m[d] = manifestAndConfig{m: m, cfg: cloneConfig(cfg)}
}

// cloneConfig copies what callers take from an image's config into
// containers (and may change there): its slices and maps.
func cloneConfig(cfg ocispec.Image) ocispec.Image {
	c := &cfg.Config
	c.Env = slices.Clone(c.Env)
	c.Cmd = slices.Clone(c.Cmd)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Labels = maps.Clone(c.Labels)
	c.ExposedPorts = maps.Clone(c.ExposedPorts)
	c.Volumes = maps.Clone(c.Volumes)
	return cfg
}
