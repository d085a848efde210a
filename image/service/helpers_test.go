package service

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testImage is an image built in memory: uncompressed layer tars, config.
type testImage struct {
	layers [][]byte
	config []byte
	cfg    ocispec.Image
}

type entry struct {
	name, body string
	typ        byte
}

func layer(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Size: int64(len(e.body))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeDir {
			h.Mode, h.Size = 0o755, 0
		}
		if h.Typeflag == tar.TypeSymlink {
			h.Linkname, h.Size = e.body, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// randomLayer makes a layer with n files of random-ish content.
func randomLayer(t testing.TB, seed int64, n, size int) []byte {
	r := rand.New(rand.NewSource(seed))
	var es []entry
	es = append(es, entry{name: fmt.Sprintf("d%d/", seed), typ: tar.TypeDir})
	for i := range n {
		b := make([]byte, size)
		r.Read(b)
		es = append(es, entry{name: fmt.Sprintf("d%d/f%d", seed, i), body: string(b)})
	}
	return layer(t, es...)
}

func newTestImage(t testing.TB, cmd string, layers ...[]byte) testImage {
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Cmd: []string{cmd}, Env: []string{"PATH=/bin"}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l))
		cfg.History = append(cfg.History, ocispec.History{CreatedBy: "test"})
	}
	b, _ := json.Marshal(cfg)
	return testImage{layers: layers, config: b, cfg: cfg}
}

func (ti testImage) id() digest.Digest { return digest.FromBytes(ti.config) }

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func tarFiles(t testing.TB, files []entry) []byte { return layer(t, files...) }

// dockerArchive writes the legacy docker save format: <id>/layer.tar.
func dockerArchive(t testing.TB, ti testImage, tags ...string) []byte {
	var files []entry
	var layers []string
	for i, l := range ti.layers {
		p := fmt.Sprintf("%064x/layer.tar", i+1)
		files = append(files, entry{name: fmt.Sprintf("%064x/", i+1), typ: tar.TypeDir}, entry{name: p, body: string(l)})
		layers = append(layers, p)
	}
	cfgName := ti.id().Encoded() + ".json"
	files = append(files, entry{name: cfgName, body: string(ti.config)})
	m, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": tags, "Layers": layers}})
	files = append(files, entry{name: "manifest.json", body: string(m)})
	return tarFiles(t, files)
}

// ociArchive writes an OCI layout with gzip layers.
func ociArchive(t testing.TB, ti testImage, name string) []byte {
	var files []entry
	blob := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		files = append(files, entry{name: "blobs/sha256/" + d.Digest.Encoded(), body: string(b)})
		return d
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range ti.layers {
		m.Layers = append(m.Layers, blob(ocispec.MediaTypeImageLayerGzip, gz(l)))
	}
	m.Config = blob(ocispec.MediaTypeImageConfig, ti.config)
	mb, _ := json.Marshal(m)
	md := blob(ocispec.MediaTypeImageManifest, mb)
	md.Annotations = map[string]string{ocispec.AnnotationRefName: name}
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{md}})
	files = append(files, entry{name: "oci-layout", body: `{"imageLayoutVersion":"1.0.0"}`}, entry{name: "index.json", body: string(idx)})
	return tarFiles(t, files)
}
