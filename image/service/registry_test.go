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
}
