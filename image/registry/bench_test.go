package registry_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/estiba/estiba/image/registry"
	"github.com/estiba/estiba/image/registry/registrytest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkPull pulls a 4-layer, 32 MiB image from a local docker-registry
// into files, as a content store would: sequentially, with 4 parallel blob
// fetches, and with crane (go-containerregistry) for comparison. Run with
//
//	go test -run '^$' -bench Pull -benchtime 5x ./image/registry/
func BenchmarkPull(b *testing.B) {
	reg := registrytest.Start(b, registrytest.Options{})
	ctx := context.Background()
	c := registry.New(registry.Options{})
	ref, err := mustParse(reg.Host + "/bench/app:v1")
	if err != nil {
		b.Fatal(err)
	}
	im := registrytest.NewImage(b, ocispec.Platform{OS: "linux", Architecture: "amd64"}, 4, 8<<20)
	for _, blob := range im.Blobs() {
		if err := c.PushBlob(ctx, ref, blob.Desc, bytesReader(blob.Data)); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.PushManifest(ctx, ref, im.Manifest.Desc, im.Manifest.Data); err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, blob := range im.Blobs() {
		total += blob.Desc.Size
	}
	pull := func(b *testing.B, parallel int) {
		b.SetBytes(total)
		for b.Loop() {
			dir := b.TempDir()
			c := registry.New(registry.Options{}) // cold: ping and connections included
			desc, err := c.Resolve(ctx, ref)
			if err != nil {
				b.Fatal(err)
			}
			data, err := c.FetchManifest(ctx, ref, desc)
			if err != nil {
				b.Fatal(err)
			}
			m, err := registry.ParseManifest(data, desc.MediaType)
			if err != nil {
				b.Fatal(err)
			}
			blobs := append([]ocispec.Descriptor{m.Config}, m.Layers...)
			sem := make(chan struct{}, parallel)
			var wg sync.WaitGroup
			for _, d := range blobs {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					if err := fetchToFile(ctx, c, ref, d, filepath.Join(dir, d.Digest.Encoded())); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
		}
	}
	b.Run("estiba-seq", func(b *testing.B) { pull(b, 1) })
	b.Run("estiba-par4", func(b *testing.B) { pull(b, 4) })
	b.Run("crane", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			dir := b.TempDir()
			if _, err := registrytest.Crane(ctx, b, "pull", "--insecure", "--format", "oci", reg.Host+"/bench/app:v1", dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func fetchToFile(ctx context.Context, c *registry.Client, ref refType, d ocispec.Descriptor, path string) error {
	rc, err := c.Fetch(ctx, ref, d, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
