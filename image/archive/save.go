package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/estiba/estiba/image/content"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// SaveImage names one image to save.
type SaveImage struct {
	Names    []string // "repo:tag" as they go into RepoTags
	Manifest ocispec.Descriptor
}

// Save writes imgs as a docker-archive that is also an OCI image layout
// (what `docker save` writes since Docker 25): blobs/sha256/<hex> for every
// blob, manifest.json for docker/podman load, index.json and oci-layout
// for OCI tools. Layers are written as stored (compressed if pulled so);
// loaders detect the compression.
func Save(ctx context.Context, w io.Writer, blobs content.Provider, imgs []SaveImage) error {
	s := &saver{tw: tar.NewWriter(w), blobs: blobs, written: map[digest.Digest]bool{}}
	var manifests []dockerManifest
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, img := range imgs {
		m, err := s.image(ctx, img)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		manifests = append(manifests, m)
		for _, n := range img.Names {
			d := img.Manifest
			d.Annotations = map[string]string{"io.containerd.image.name": n, ocispec.AnnotationRefName: n}
			idx.Manifests = append(idx.Manifests, d)
		}
		if len(img.Names) == 0 {
			idx.Manifests = append(idx.Manifests, img.Manifest)
		}
	}
	mj, _ := json.Marshal(manifests)
	ij, _ := json.Marshal(idx)
	lj, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	for _, f := range []struct {
		name string
		data []byte
	}{{"oci-layout", lj}, {"index.json", ij}, {"manifest.json", mj}} {
		if err := s.file(f.name, f.data); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	if err := s.tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

type saver struct {
	tw      *tar.Writer
	blobs   content.Provider
	written map[digest.Digest]bool
}

func (s *saver) image(ctx context.Context, img SaveImage) (dockerManifest, error) {
	mb, err := ReadBlob(ctx, s.blobs, img.Manifest)
	if err != nil {
		return dockerManifest{}, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return dockerManifest{}, fmt.Errorf("manifest %s: %w", img.Manifest.Digest, err)
	}
	dm := dockerManifest{Config: blobPath(m.Config.Digest), RepoTags: img.Names}
	for _, d := range append([]ocispec.Descriptor{img.Manifest, m.Config}, m.Layers...) {
		if err := s.blob(ctx, d); err != nil {
			return dockerManifest{}, err
		}
	}
	for _, l := range m.Layers {
		dm.Layers = append(dm.Layers, blobPath(l.Digest))
	}
	if dm.RepoTags == nil {
		dm.RepoTags = []string{}
	}
	return dm, nil
}

func blobPath(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }

var epoch = time.Unix(0, 0)

func (s *saver) blob(ctx context.Context, d ocispec.Descriptor) error {
	if s.written[d.Digest] {
		return nil
	}
	ra, err := s.blobs.ReaderAt(ctx, d)
	if err != nil {
		return err
	}
	defer ra.Close()
	hdr := &tar.Header{Name: blobPath(d.Digest), Mode: 0o444, Size: ra.Size(), ModTime: epoch, Typeflag: tar.TypeReg}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(s.tw, io.NewSectionReader(ra, 0, ra.Size()), make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("write blob %s: %w", d.Digest, err)
	}
	s.written[d.Digest] = true
	return nil
}

func (s *saver) file(name string, data []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := s.tw.Write(data)
	return err
}

// ReadBlob reads a small blob (manifest, config) into memory.
func ReadBlob(ctx context.Context, blobs content.Provider, d ocispec.Descriptor) ([]byte, error) {
	ra, err := blobs.ReaderAt(ctx, d)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	if ra.Size() > maxJSON {
		return nil, fmt.Errorf("blob %s: %d bytes, too big for metadata", d.Digest, ra.Size())
	}
	b := make([]byte, ra.Size())
	if _, err := ra.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read blob %s: %w", d.Digest, err)
	}
	return b, nil
}
