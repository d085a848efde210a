package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/estiba/estiba/image/content"
	"github.com/estiba/estiba/image/unpack"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (l *loader) dockerImages(ctx context.Context) ([]Image, error) {
	var entries []dockerManifest
	if err := json.Unmarshal(l.files["manifest.json"], &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var imgs []Image
	for _, m := range entries {
		cfgData, ok := l.files[path.Clean(m.Config)]
		if !ok {
			return nil, fmt.Errorf("manifest.json: config %q not in archive", m.Config)
		}
		var layers []*layerEntry
		for _, lp := range m.Layers {
			e, err := l.layerAt(lp)
			if err != nil {
				return nil, err
			}
			layers = append(layers, e)
		}
		img, err := l.build(ctx, cfgData, layers)
		if err != nil {
			return nil, fmt.Errorf("image %v: %w", m.RepoTags, err)
		}
		img.Names = m.RepoTags
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// layerAt finds a loaded layer by archive path, following legacy symlinks.
func (l *loader) layerAt(p string) (*layerEntry, error) {
	p = path.Clean(p)
	for range 8 {
		if e := l.loaded[p]; e != nil {
			return e, nil
		}
		t, ok := l.files["symlink:"+p]
		if !ok {
			break
		}
		p = path.Clean(string(t))
	}
	return nil, fmt.Errorf("layer %q not in archive (or not a layer)", p)
}

func (l *loader) ociImages(ctx context.Context) ([]Image, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(l.files["index.json"], &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var imgs []Image
	for _, d := range idx.Manifests {
		got, err := l.ociManifest(ctx, d, 0)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, got...)
	}
	return imgs, nil
}

func (l *loader) blobFile(d digest.Digest) ([]byte, error) {
	b, ok := l.files["blobs/"+d.Algorithm().String()+"/"+d.Encoded()]
	if !ok {
		return nil, fmt.Errorf("blob %s not in archive", d)
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("blob %s: digest mismatch", d)
	}
	return b, nil
}

func (l *loader) ociManifest(ctx context.Context, d ocispec.Descriptor, depth int) ([]Image, error) {
	if depth > 4 {
		return nil, errors.New("index nesting too deep")
	}
	b, err := l.blobFile(d.Digest)
	if err != nil {
		return nil, err
	}
	name := d.Annotations["io.containerd.image.name"]
	if name == "" {
		name = d.Annotations[ocispec.AnnotationRefName]
	}
	switch d.MediaType {
	case ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		var out []Image
		for _, m := range idx.Manifests {
			imgs, err := l.ociManifest(ctx, m, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, imgs...)
		}
		if name != "" && len(out) == 1 {
			out[0].Names = append(out[0].Names, name)
		}
		return out, nil
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	cfg, err := l.blobFile(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	var layers []*layerEntry
	for _, ld := range m.Layers {
		e, err := l.layerAt("blobs/sha256/" + ld.Digest.Encoded())
		if err != nil {
			return nil, err
		}
		layers = append(layers, e)
	}
	img, err := l.build(ctx, cfg, layers)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	if name != "" {
		img.Names = []string{name}
	}
	return []Image{img}, nil
}

// build verifies the layers against the config's diff_ids, commits their
// snapshots in order and stores config and a generated OCI manifest.
func (l *loader) build(ctx context.Context, cfgData []byte, layers []*layerEntry) (Image, error) {
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgData, &cfg); err != nil {
		return Image{}, fmt.Errorf("config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return Image{}, fmt.Errorf("config lists %d layers, manifest %d", len(cfg.RootFS.DiffIDs), len(layers))
	}
	parent := ""
	for i, e := range layers {
		if e.res.DiffID != cfg.RootFS.DiffIDs[i] {
			return Image{}, fmt.Errorf("layer %d: diffID %s, config says %s", i, e.res.DiffID, cfg.RootFS.DiffIDs[i])
		}
		chain := ChainID(parent, e.res.DiffID)
		if err := l.commitLayer(ctx, chain, parent, e); err != nil {
			return Image{}, fmt.Errorf("layer %d: %w", i, err)
		}
		parent = chain
	}
	cfgDesc, err := PutBlob(ctx, l.blobs, ocispec.MediaTypeImageConfig, cfgData)
	if err != nil {
		return Image{}, err
	}
	man := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc}
	for _, e := range layers {
		man.Layers = append(man.Layers, e.desc)
	}
	mb, _ := json.Marshal(man)
	mdesc, err := PutBlob(ctx, l.blobs, ocispec.MediaTypeImageManifest, mb)
	if err != nil {
		return Image{}, err
	}
	return Image{Manifest: mdesc, Config: cfg, ConfigDesc: cfgDesc}, nil
}

// commitLayer makes snapshot chain from e's staging dir, or, if the staging
// dir was already used under another parent, unpacks the blob again.
func (l *loader) commitLayer(ctx context.Context, chain, parent string, e *layerEntry) error {
	if l.layers.Exists(ctx, chain) {
		return nil
	}
	if !e.adopted {
		lowers, err := l.layers.LowerDirs(parent)
		if err != nil {
			return err
		}
		if err := unpack.CheckLowers(e.res.ImplicitDirs, lowers); err != nil {
			return err
		}
		if err := l.layers.AdoptDir(ctx, chain, parent, e.staging); err != nil {
			return err
		}
		e.adopted = true
		return nil
	}
	return UnpackBlob(ctx, l.blobs, l.layers, e.desc, chain, parent, e.res.DiffID, l.opts)
}

// UnpackBlob unpacks a stored layer blob as snapshot chain on parent and
// checks its diffID.
func UnpackBlob(ctx context.Context, blobs content.Provider, layers Layers, desc ocispec.Descriptor, chain, parent string, diffID digest.Digest, opts unpack.Options) error {
	return layers.Apply(ctx, chain, parent, func(dir string, lowers []string) error {
		ra, err := blobs.ReaderAt(ctx, desc)
		if err != nil {
			return err
		}
		defer ra.Close()
		o := opts
		o.Lowers = lowers
		res, err := unpack.Apply(ctx, io.NewSectionReader(ra, 0, ra.Size()), dir, o)
		if err != nil {
			return err
		}
		if res.DiffID != diffID {
			return fmt.Errorf("layer %s: diffID %s, config says %s", desc.Digest, res.DiffID, diffID)
		}
		return nil
	})
}

// ChainID is the OCI chain ID of diffID on top of chain parent.
func ChainID(parent string, diffID digest.Digest) string {
	if parent == "" {
		return diffID.String()
	}
	return digest.FromString(parent + " " + diffID.String()).String()
}

// PutBlob stores a small blob held in memory.
func PutBlob(ctx context.Context, blobs content.Ingester, mediaType string, data []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	err := content.Copy(ctx, blobs, desc, func(_ context.Context, off int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data[off:])), nil
	}, nil)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("store %s: %w", desc.Digest, err)
	}
	return desc, nil
}
