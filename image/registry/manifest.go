package registry

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types; the OCI ones are in ocispec.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"

	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// manifestAccept is what the client accepts for a manifest request.
var manifestAccept = []string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
}

// MaxManifestSize bounds manifests and indexes, as Docker does: they are read
// whole into memory, unlike blobs.
const MaxManifestSize = 4 << 20

// IsIndex reports whether mediaType is a multi-platform index or list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether mediaType is a single-platform image manifest.
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// Compression of a layer blob, as named by its media type.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	return [...]string{"uncompressed", "gzip", "zstd"}[c]
}

var layerCompression = map[string]Compression{
	ocispec.MediaTypeImageLayer:                     Uncompressed,
	ocispec.MediaTypeImageLayerGzip:                 Gzip,
	ocispec.MediaTypeImageLayerZstd:                 Zstd,
	ocispec.MediaTypeImageLayerNonDistributable:     Uncompressed, //nolint:staticcheck // still found in the wild
	ocispec.MediaTypeImageLayerNonDistributableGzip: Gzip,         //nolint:staticcheck
	ocispec.MediaTypeImageLayerNonDistributableZstd: Zstd,         //nolint:staticcheck
	"application/vnd.docker.image.rootfs.diff.tar":  Uncompressed,
	MediaTypeDockerLayer:                            Gzip,
	MediaTypeDockerForeignLayer:                     Gzip,
	MediaTypeDockerLayerZstd:                        Zstd,
}

// LayerCompression says how a layer of mediaType is compressed; it fails
// with ErrUnsupported for media types that are not image layers.
func LayerCompression(mediaType string) (Compression, error) {
	c, ok := layerCompression[mediaType]
	if !ok {
		return 0, fmt.Errorf("layer media type %q: %w", mediaType, ErrUnsupported)
	}
	return c, nil
}

// shape holds the fields that tell manifests and indexes apart, so a document
// cannot pass as both (the OCI spec's warning about ambiguous content).
type shape struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        json.RawMessage `json:"config"`
	Layers        json.RawMessage `json:"layers"`
	Manifests     json.RawMessage `json:"manifests"`
	FSLayers      json.RawMessage `json:"fsLayers"`
}

func parseShape(data []byte, mediaType string) (shape, error) {
	var s shape
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if s.FSLayers != nil || mediaType == mediaTypeDockerSchema1 || mediaType == mediaTypeDockerSchema1Signed {
		return s, fmt.Errorf("docker schema 1 manifests: %w (push the image again with a current client)", ErrUnsupported)
	}
	if s.SchemaVersion != 2 {
		return s, fmt.Errorf("%w: schemaVersion %d, want 2", ErrInvalid, s.SchemaVersion)
	}
	if s.MediaType != "" && mediaType != "" && s.MediaType != mediaType {
		return s, fmt.Errorf("%w: document says mediaType %q, served as %q", ErrInvalid, s.MediaType, mediaType)
	}
	return s, nil
}

// ParseManifest decodes and validates an image manifest (OCI or Docker v2
// schema 2). mediaType is the type it was served or described as; empty
// means unknown.
func ParseManifest(data []byte, mediaType string) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	s, err := parseShape(data, mediaType)
	if err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if s.Manifests != nil {
		return m, fmt.Errorf("manifest: %w: has a manifests field", ErrInvalid)
	}
	if t := firstNonEmpty(s.MediaType, mediaType); t != "" && !IsManifest(t) {
		return m, fmt.Errorf("manifest: media type %q: %w", t, ErrUnsupported)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("manifest: %w: %v", ErrInvalid, err)
	}
	if err := validateDescriptor(m.Config); err != nil {
		return m, fmt.Errorf("manifest config: %w", err)
	}
	for i, l := range m.Layers {
		if err := validateDescriptor(l); err != nil {
			return m, fmt.Errorf("manifest layer %d: %w", i, err)
		}
	}
	return m, nil
}

// ParseIndex decodes and validates an OCI index or Docker manifest list.
func ParseIndex(data []byte, mediaType string) (ocispec.Index, error) {
	var idx ocispec.Index
	s, err := parseShape(data, mediaType)
	if err != nil {
		return idx, fmt.Errorf("index: %w", err)
	}
	if s.Config != nil || s.Layers != nil {
		return idx, fmt.Errorf("index: %w: has config or layers", ErrInvalid)
	}
	if t := firstNonEmpty(s.MediaType, mediaType); t != "" && !IsIndex(t) {
		return idx, fmt.Errorf("index: media type %q: %w", t, ErrUnsupported)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, fmt.Errorf("index: %w: %v", ErrInvalid, err)
	}
	for i, d := range idx.Manifests {
		if err := validateDescriptor(d); err != nil {
			return idx, fmt.Errorf("index entry %d: %w", i, err)
		}
	}
	return idx, nil
}

func validateDescriptor(d ocispec.Descriptor) error {
	if d.MediaType == "" {
		return fmt.Errorf("%w: no media type", ErrInvalid)
	}
	if err := d.Digest.Validate(); errors.Is(err, digest.ErrDigestUnsupported) {
		return fmt.Errorf("digest %q: %w", d.Digest, ErrUnsupported)
	} else if err != nil {
		return fmt.Errorf("%w: digest %q: %v", ErrInvalid, d.Digest, err)
	}
	if d.Digest.Algorithm() != digest.SHA256 && d.Digest.Algorithm() != digest.SHA512 {
		return fmt.Errorf("digest algorithm %q: %w", d.Digest.Algorithm(), ErrUnsupported)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: negative size %d", ErrInvalid, d.Size)
	}
	return nil
}

// MediaTypeOf returns the media type a manifest document declares, or "".
func MediaTypeOf(data []byte) string {
	var s struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(data, &s)
	return s.MediaType
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
