package registry_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/estiba/estiba/image/registry"
	"github.com/estiba/estiba/image/registry/registrytest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestCraneInterop checks the client against an independent one: images
// crane builds (Docker v2 manifests, an OCI index; then a Docker manifest
// list we assemble from them) pull with this client, and what this client
// pushes passes `crane validate --remote`.
func TestCraneInterop(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := testContext(t)
	crane := func(args ...string) string {
		t.Helper()
		out, err := registrytest.Crane(ctx, t, append(args, "--insecure")...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	layer := filepath.Join(t.TempDir(), "layer.tgz")
	writeTarGz(t, layer, "hello.txt", []byte("hello from crane"))
	a, b, idx := reg.Host+"/crane/a:v1", reg.Host+"/crane/b:v1", reg.Host+"/crane/idx:v1"
	crane("append", "-f", layer, "-t", a)
	crane("mutate", "--set-platform", "linux/arm64", a, "-t", b)
	crane("mutate", "--set-platform", "linux/amd64", a, "-t", a)
	crane("index", "append", "-m", a, "-m", b, "-t", idx)

	c := registry.New(registry.Options{})
	for _, want := range []string{"linux/amd64", "linux/arm64"} {
		p, _ := registry.ParsePlatform(want)
		m := pullPlatform(t, c, idx, p)
		if m.MediaType != registry.MediaTypeDockerManifest {
			t.Errorf("crane manifest type %q", m.MediaType)
		}
		for _, l := range m.Layers {
			if comp, err := registry.LayerCompression(l.MediaType); err != nil || comp != registry.Gzip {
				t.Errorf("layer %s: %v, %v", l.MediaType, comp, err)
			}
		}
	}

	// A Docker manifest list over the same two manifests.
	ref := mustRef(t, idx)
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	data, err := c.FetchManifest(ctx, ref, desc)
	if err != nil {
		t.Fatal(err)
	}
	var list map[string]any
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	list["mediaType"] = registry.MediaTypeDockerManifestList
	listData, _ := json.Marshal(list)
	listBlob := registrytest.NewBlob(registry.MediaTypeDockerManifestList, listData)
	listRef := mustRef(t, reg.Host+"/crane/idx:list")
	if err := c.PushManifest(ctx, listRef, listBlob.Desc, listBlob.Data); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Resolve(ctx, listRef); err != nil || got.MediaType != registry.MediaTypeDockerManifestList || got.Digest != listBlob.Desc.Digest {
		t.Fatalf("resolve manifest list: %+v, %v", got, err)
	}
	pullPlatform(t, c, listRef.String(), arm64)

	// What this client pushes, crane accepts.
	im := registrytest.NewImage(t, amd64, 2, 4096)
	ours := mustRef(t, reg.Host+"/ours/app:v1")
	pushImage(t, ctx, c, ours, im)
	crane("validate", "--remote", ours.String())
}

// pullPlatform resolves s, selects p, and reads every blob (verified).
func pullPlatform(t *testing.T, c *registry.Client, s string, p ocispec.Platform) ocispec.Manifest {
	t.Helper()
	ctx := testContext(t)
	ref := mustRef(t, s)
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	data, err := c.FetchManifest(ctx, ref, desc)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := registry.ParseIndex(data, desc.MediaType)
	if err != nil {
		t.Fatal(err)
	}
	if desc, err = registry.SelectManifest(idx, p); err != nil {
		t.Fatal(err)
	}
	if data, err = c.FetchManifest(ctx, ref, desc); err != nil {
		t.Fatal(err)
	}
	m, err := registry.ParseManifest(data, desc.MediaType)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		rc, err := c.Fetch(ctx, ref, d, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("blob %s: %v", d.Digest, err)
		}
	}
	var cfg ocispec.Image
	rc, err := c.Fetch(ctx, ref, m.Config, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(&cfg); err != nil || cfg.Architecture != p.Architecture {
		t.Fatalf("config of %s: arch %q, %v", registry.FormatPlatform(p), cfg.Architecture, err)
	}
	return m
}

func writeTarGz(t *testing.T, path, name string, content []byte) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(content)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
