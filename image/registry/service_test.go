package registry_test

import (
	"context"
	"testing"

	"github.com/estiba/estiba/image/registry"
	"github.com/estiba/estiba/image/registry/registrytest"
	"github.com/estiba/estiba/image/service"
	"github.com/estiba/estiba/internal/testutil"
)

// TestServicePullPush runs image/service over this client against a real
// token-auth registry: push a test image, pull it into a store (layers
// unpacked into snapshots), push it back under another name, remove it.
func TestServicePullPush(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.AuthToken})
	ctx := testContext(t)
	cred := staticCreds{registry.Credential{Username: reg.Username, Password: reg.Password}}
	c := registry.New(registry.Options{Credentials: cred})
	im := registrytest.NewImage(t, amd64, 3, 16<<10)
	other := registrytest.NewImage(t, arm64, 1, 100)
	idx := registrytest.NewIndex(t, im, other)
	ref := mustRef(t, reg.Host+"/svc/app:v1")
	pushImage(t, ctx, c, ref.NameOnly(), im)
	pushImage(t, ctx, c, ref.NameOnly(), other)
	if err := c.PushManifest(ctx, ref, idx.Desc, idx.Data); err != nil {
		t.Fatal(err)
	}

	s, err := service.Open(t.TempDir(), service.Options{Registry: service.RegistryClient(c), Pusher: service.RegistryClient(c)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Pull(ctx, ref.String(), amd64, nil); err != nil {
		t.Fatalf("service pull: %v", err)
	}
	if err := s.Tag(ctx, ref.String(), reg.Host+"/svc/copy:v2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, reg.Host+"/svc/copy:v2", nil); err != nil {
		t.Fatalf("service push: %v", err)
	}
	pullAndCheck(t, context.Background(), c, mustRef(t, reg.Host+"/svc/copy:v2"), im, amd64)
	for _, n := range []string{ref.String(), reg.Host + "/svc/copy:v2"} {
		if _, err := s.Remove(ctx, n, false); err != nil {
			t.Fatal(err)
		}
	}
}
