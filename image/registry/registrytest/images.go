package registrytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Blob is content with its descriptor.
type Blob struct {
	Desc ocispec.Descriptor
	Data []byte
}

// Image is a test image: gzip-compressed tar layers of random files, an OCI
// config whose diff_ids match them, and the manifest.
type Image struct {
	Manifest Blob
	Config   Blob
	Layers   []Blob
}

// Blobs returns config and layers, the content to push before the manifest.
func (im Image) Blobs() []Blob { return append([]Blob{im.Config}, im.Layers...) }

// NewImage builds an image for platform with n layers, each holding one
// random file of size bytes.
func NewImage(t testing.TB, platform ocispec.Platform, n, size int) Image {
	t.Helper()
	var im Image
	cfg := ocispec.Image{Platform: platform, RootFS: ocispec.RootFS{Type: "layers"}}
	for i := range n {
		tarData, gz := layer(t, fmt.Sprintf("layer%d/data", i), size)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(tarData))
		im.Layers = append(im.Layers, NewBlob(ocispec.MediaTypeImageLayerGzip, gz))
	}
	im.Config = NewBlob(ocispec.MediaTypeImageConfig, mustJSON(t, cfg))
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    im.Config.Desc,
	}
	m.SchemaVersion = 2
	for _, l := range im.Layers {
		m.Layers = append(m.Layers, l.Desc)
	}
	im.Manifest = NewBlob(ocispec.MediaTypeImageManifest, mustJSON(t, m))
	p := platform
	im.Manifest.Desc.Platform = &p
	return im
}

// NewIndex builds an OCI index of images (their manifests' descriptors carry
// the platforms).
func NewIndex(t testing.TB, images ...Image) Blob {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, im := range images {
		idx.Manifests = append(idx.Manifests, im.Manifest.Desc)
	}
	return NewBlob(ocispec.MediaTypeImageIndex, mustJSON(t, idx))
}

// NewBlob describes data.
func NewBlob(mediaType string, data []byte) Blob {
	return Blob{Desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, Data: data}
}

// layer returns a tar holding one random file, and its gzip.
func layer(t testing.TB, name string, size int) (tarData, gz []byte) {
	content := make([]byte, size)
	_, _ = rand.Read(content)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: path.Dir(name) + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gb, gzip.BestSpeed)
	_, _ = zw.Write(tb.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return tb.Bytes(), gb.Bytes()
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
