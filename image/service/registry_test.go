package service

import (
	"bytes"
	"context"
	"testing"

	"github.com/estiba/estiba/image/reference"
	"github.com/estiba/estiba/image/registry"
	"github.com/estiba/estiba/image/registry/registrytest"
	"github.com/estiba/estiba/internal/testutil"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestRegistryRoundTrip pushes a loaded image to a real registry and pulls
// it into a fresh store; then pulls a multi-platform index.
func TestRegistryRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := context.Background()
	c := RegistryClient(registry.New(registry.Options{}))
	src := open(t, t.TempDir(), Options{Registry: c, Pusher: c})
	ti := baseImage(t)
	if _, err := src.Load(ctx, bytes.NewReader(dockerArchive(t, ti, reg.Host+"/estiba/app:1"))); err != nil {
		t.Fatal(err)
	}
	if err := src.Push(ctx, reg.Host+"/estiba/app:1", nil); err != nil {
		t.Fatal(err)
	}
	dst := open(t, t.TempDir(), Options{Registry: c})
	id, err := dst.Pull(ctx, reg.Host+"/estiba/app:1", ocispec.Platform{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id != ti.id() {
		t.Fatalf("pulled %s, pushed %s", id, ti.id())
	}
	// Push and pull both record the manifest's digest as the repository
	// digest, and it names the image.
	pushed, err := src.Inspect(ctx, reg.Host+"/estiba/app:1")
	if err != nil {
		t.Fatal(err)
	}
	want := reg.Host + "/estiba/app@" + pushed.Manifest.Digest.String()
	pulled, err := dst.Inspect(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []Image{pushed, pulled} {
		if len(img.RepoDigests) != 1 || img.RepoDigests[0] != want || len(img.Names) != 1 {
			t.Fatalf("names %v, repo digests %v; want [%s]", img.Names, img.RepoDigests, want)
		}
	}

	// A multi-platform index: Pull picks the requested platform.
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	imArm := registrytest.NewImage(t, arm, 2, 1000)
	imAmd := registrytest.NewImage(t, amd, 1, 1000)
	idx := registrytest.NewIndex(t, imArm, imAmd)
	rc := registry.New(registry.Options{})
	ref, _ := reference.Parse(reg.Host + "/estiba/multi:1")
	for _, im := range []registrytest.Image{imArm, imAmd} {
		for _, b := range append(im.Blobs(), im.Manifest) {
			if err := rc.Push(ctx, ref, b.Desc, bytes.NewReader(b.Data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := rc.Push(ctx, ref, idx.Desc, bytes.NewReader(idx.Data)); err != nil {
		t.Fatal(err)
	}
	id, err = dst.Pull(ctx, ref.String(), arm, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id != imArm.Config.Desc.Digest {
		t.Fatalf("pulled %s, want the arm64 config %s", id, imArm.Config.Desc.Digest)
	}
	// From an index, the repository digest is the index's (as Docker's),
	// and pulling by it gives the same image without adding a tag.
	byIndex := ref.Name() + "@" + idx.Desc.Digest.String()
	img, err := dst.Inspect(ctx, ref.String())
	if err != nil || len(img.RepoDigests) != 1 || img.RepoDigests[0] != byIndex {
		t.Fatalf("repo digests %v, %v; want [%s]", img.RepoDigests, err, byIndex)
	}
	fresh := open(t, t.TempDir(), Options{Registry: c})
	p, err := fresh.PullImage(ctx, byIndex, arm, nil)
	if err != nil || p.ID != imArm.Config.Desc.Digest || p.RepoDigest != byIndex {
		t.Fatalf("pull by digest: %+v, %v", p, err)
	}
	if img, err := fresh.Inspect(ctx, byIndex); err != nil || len(img.Names) != 0 {
		t.Fatalf("pulled by digest: names %v, %v; want none", img.Names, err)
	}
}
