package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/estiba/estiba/image/reference"
	"github.com/estiba/estiba/image/registry"
	"github.com/estiba/estiba/image/registry/registrytest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	amd64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = ocispec.Platform{OS: "linux", Architecture: "arm64"}
	armv7 = ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustRef(t *testing.T, s string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pushImage(t *testing.T, ctx context.Context, c *registry.Client, ref reference.Reference, im registrytest.Image) {
	t.Helper()
	for _, b := range im.Blobs() {
		if err := c.PushBlob(ctx, ref, b.Desc, bytes.NewReader(b.Data)); err != nil {
			t.Fatalf("push blob: %v", err)
		}
	}
	if err := c.PushManifest(ctx, ref, im.Manifest.Desc, im.Manifest.Data); err != nil {
		t.Fatalf("push manifest: %v", err)
	}
}

// pullAndCheck resolves ref, picks want from an index if there is one, and
// fetches and compares every blob of the image.
func pullAndCheck(t *testing.T, ctx context.Context, c *registry.Client, ref reference.Reference, want registrytest.Image, platform ocispec.Platform) {
	t.Helper()
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatalf("resolve %s: %v", ref, err)
	}
	data, err := c.FetchManifest(ctx, ref, desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	if registry.IsIndex(desc.MediaType) {
		idx, err := registry.ParseIndex(data, desc.MediaType)
		if err != nil {
			t.Fatal(err)
		}
		if desc, err = registry.SelectManifest(idx, platform); err != nil {
			t.Fatal(err)
		}
		if data, err = c.FetchManifest(ctx, ref, desc); err != nil {
			t.Fatal(err)
		}
	}
	if desc.Digest != want.Manifest.Desc.Digest || !bytes.Equal(data, want.Manifest.Data) {
		t.Fatalf("manifest %s, want %s", desc.Digest, want.Manifest.Desc.Digest)
	}
	m, err := registry.ParseManifest(data, desc.MediaType)
	if err != nil {
		t.Fatal(err)
	}
	blobs := append([]ocispec.Descriptor{m.Config}, m.Layers...)
	for i, b := range blobs {
		rc, err := c.Fetch(ctx, ref, b, 0)
		if err != nil {
			t.Fatalf("fetch blob %d: %v", i, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read blob %d: %v", i, err)
		}
		if !bytes.Equal(got, want.Blobs()[i].Data) {
			t.Fatalf("blob %d differs", i)
		}
	}
}

func TestRegistryOpen(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := testContext(t)
	c := registry.New(registry.Options{ChunkSize: 64 << 10})
	ref := mustRef(t, reg.Host+"/estiba/app:v1")
	im := registrytest.NewImage(t, amd64, 3, 100<<10) // > ChunkSize: chunked upload
	pushImage(t, ctx, c, ref, im)
	pullAndCheck(t, ctx, c, ref, im, amd64)

	t.Run("by digest", func(t *testing.T) {
		byDigest, _ := ref.NameOnly().WithDigest(im.Manifest.Desc.Digest)
		pullAndCheck(t, ctx, c, byDigest, im, amd64)
	})
	t.Run("resume", func(t *testing.T) {
		l := im.Layers[0]
		rc, err := c.FetchBlob(ctx, ref, l.Desc, 1000)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, l.Data[1000:]) {
			t.Fatalf("resumed read: %d bytes, %v", len(got), err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, err := c.Resolve(ctx, mustRef(t, reg.Host+"/estiba/app:nope"))
		if !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("resolve missing tag: %v, want ErrNotFound", err)
		}
		var re *registry.Error
		if _, err := c.FetchManifest(ctx, ref, registrytest.NewBlob(ocispec.MediaTypeImageManifest, []byte("{}")).Desc); !errors.As(err, &re) || !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("fetch missing manifest: %v", err)
		}
	})
	t.Run("mount", func(t *testing.T) {
		other := mustRef(t, reg.Host+"/estiba/other:v1")
		for _, b := range im.Blobs() {
			ok, err := c.MountBlob(ctx, other, ref, b.Desc)
			if err != nil || !ok {
				t.Fatalf("mount %s: %v, %v", b.Desc.Digest, ok, err)
			}
		}
		if err := c.PushManifest(ctx, other, im.Manifest.Desc, im.Manifest.Data); err != nil {
			t.Fatal(err)
		}
		pullAndCheck(t, ctx, c, other, im, amd64)
	})
	t.Run("tags", func(t *testing.T) {
		tags, err := c.Tags(ctx, ref)
		if err != nil || len(tags) != 1 || tags[0] != "v1" {
			t.Fatalf("tags = %v, %v", tags, err)
		}
	})
}

func TestRegistryMultiPlatform(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := testContext(t)
	c := registry.New(registry.Options{})
	ref := mustRef(t, reg.Host+"/multi:latest")
	images := []registrytest.Image{
		registrytest.NewImage(t, amd64, 2, 4096),
		registrytest.NewImage(t, arm64, 2, 4096),
		registrytest.NewImage(t, armv7, 1, 4096),
	}
	for _, im := range images {
		pushImage(t, ctx, c, ref.NameOnly(), im) // children by digest
	}
	idx := registrytest.NewIndex(t, images...)
	if err := c.PushManifest(ctx, ref, idx.Desc, idx.Data); err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"linux/amd64", "linux/arm64/v8", "linux/arm"} {
		want, err := registry.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		pullAndCheck(t, ctx, c, ref, images[i], want)
	}
	_, err := registry.SelectManifest(ocispec.Index{Manifests: []ocispec.Descriptor{images[0].Manifest.Desc}}, ocispec.Platform{OS: "linux", Architecture: "s390x"})
	if !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("select s390x: %v", err)
	}
}

func TestRegistryBasicAuth(t *testing.T) {
	testAuth(t, registrytest.AuthBasic)
}

func TestRegistryTokenAuth(t *testing.T) {
	reg := testAuth(t, registrytest.AuthToken)
	if n := reg.Tokens.Requests.Load(); n > 8 {
		t.Errorf("%d token requests: tokens are not cached", n)
	}
}

func testAuth(t *testing.T, mode registrytest.Auth) *registrytest.Registry {
	reg := registrytest.Start(t, registrytest.Options{Auth: mode})
	ctx := testContext(t)
	ref := mustRef(t, reg.Host+"/private/app:v1")
	im := registrytest.NewImage(t, amd64, 2, 8192)

	anon := registry.New(registry.Options{})
	if err := anon.PushBlob(ctx, ref, im.Config.Desc, bytes.NewReader(im.Config.Data)); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("anonymous push: %v, want ErrUnauthorized", err)
	}
	cfg, err := registry.LoadDockerConfig(filepath.Join(t.TempDir(), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.Login(ctx, reg.Host, registry.Credential{Username: reg.Username, Password: "wrong"}); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("login with a wrong password: %v, want ErrUnauthorized", err)
	}
	cred := registry.Credential{Username: reg.Username, Password: reg.Password}
	if err := anon.Login(ctx, reg.Host, cred); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := cfg.Store(reg.Host, cred); err != nil {
		t.Fatal(err)
	}
	c := registry.New(registry.Options{Credentials: cfg})
	pushImage(t, ctx, c, ref, im)
	pullAndCheck(t, ctx, c, ref, im, amd64)
	return reg
}

func TestRegistryPushFaults(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := testContext(t)
	ref := mustRef(t, reg.Host+"/faults:v1")
	data := bytes.Repeat([]byte("x"), 200<<10)
	desc := registrytest.NewBlob(ocispec.MediaTypeImageLayerGzip, data).Desc
	for _, chunk := range []int64{1 << 20, 64 << 10} { // monolithic, chunked
		c := registry.New(registry.Options{ChunkSize: chunk})
		wrong := append([]byte{}, data...)
		wrong[100] = 'y'
		if err := c.PushBlob(ctx, ref, desc, bytes.NewReader(wrong)); err == nil {
			t.Fatalf("chunk %d: wrong content pushed", chunk)
		}
		if err := c.PushBlob(ctx, ref, desc, bytes.NewReader(data[:1000])); err == nil {
			t.Fatalf("chunk %d: short content pushed", chunk)
		}
		if ok, err := c.BlobExists(ctx, ref, desc); err != nil || ok {
			t.Fatalf("chunk %d: bad content stored: %v, %v", chunk, ok, err)
		}
	}
	c := registry.New(registry.Options{})
	if err := c.PushManifest(ctx, ref, desc, data); !errors.Is(err, registry.ErrUnsupported) && !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("blob pushed as manifest: %v", err)
	}
	im := registrytest.NewImage(t, amd64, 1, 100)
	if err := c.PushManifest(ctx, ref, im.Manifest.Desc, im.Manifest.Data); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("manifest with missing blobs: %v, want ErrInvalid (MANIFEST_BLOB_UNKNOWN)", err)
	}
}

type refType = reference.Reference

func mustParse(s string) (reference.Reference, error) { return reference.Parse(s) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// TestRegistryConcurrentPull shares one client among goroutines against a
// token-auth registry: no races, and tokens are fetched about once per scope.
func TestRegistryConcurrentPull(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.AuthToken})
	ctx := testContext(t)
	ref := mustRef(t, reg.Host+"/par/app:v1")
	cred := staticCreds{registry.Credential{Username: reg.Username, Password: reg.Password}}
	im := registrytest.NewImage(t, amd64, 4, 32<<10)
	pushImage(t, ctx, registry.New(registry.Options{Credentials: cred}), ref, im)
	before := reg.Tokens.Requests.Load()
	c := registry.New(registry.Options{Credentials: cred})
	t.Run("pulls", func(t *testing.T) {
		for i := range 8 {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				pullAndCheck(t, ctx, c, ref, im, amd64)
			})
		}
	})
	if n := reg.Tokens.Requests.Load() - before; n > 8 {
		t.Errorf("%d token requests for 8 concurrent pulls of one repository", n)
	}
}

type staticCreds struct{ c registry.Credential }

func (s staticCreds) Credential(string) (registry.Credential, error) { return s.c, nil }

// TestRegistryTLS: a loopback registry speaking HTTPS is reached over HTTPS
// (self-signed, accepted as Docker accepts loopback registries), with Basic
// auth over it.
func TestRegistryTLS(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Auth: registrytest.AuthBasic})
	ctx := testContext(t)
	cred := staticCreds{registry.Credential{Username: reg.Username, Password: reg.Password}}
	c := registry.New(registry.Options{Credentials: cred})
	ref := mustRef(t, "localhost:"+reg.Host[strings.LastIndexByte(reg.Host, ':')+1:]+"/tls/app:v1")
	im := registrytest.NewImage(t, amd64, 2, 4096)
	pushImage(t, ctx, c, ref, im)
	pullAndCheck(t, ctx, c, ref, im, amd64)
}

// TestRegistryClientCertificate: a registry requiring client certificates
// is refused without CertsDir and served with the key pair in
// CertsDir/<host>/, as Docker reads /etc/docker/certs.d.
func TestRegistryClientCertificate(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{TLS: true, ClientCerts: true})
	ctx := testContext(t)
	ref := mustRef(t, reg.Host+"/mtls/app:v1")
	if _, err := registry.New(registry.Options{Retries: -1}).Resolve(ctx, ref); err == nil {
		t.Fatal("resolved without a client certificate")
	}
	certs := t.TempDir()
	hostDir := filepath.Join(certs, reg.Host)
	if err := os.MkdirAll(hostDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"client.cert": reg.ClientCert, "client.key": reg.ClientKey, "ca.crt": reg.CACert} {
		if err := os.WriteFile(filepath.Join(hostDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := registry.New(registry.Options{CertsDir: certs})
	im := registrytest.NewImage(t, amd64, 1, 4096)
	pushImage(t, ctx, c, ref, im)
	pullAndCheck(t, ctx, c, ref, im, amd64)
}

// TestRegistryCredHelper: login stores through a credential helper
// (credsStore), push and pull against a real htpasswd registry take the
// credential from it, logout erases it and the next push is refused.
func TestRegistryCredHelper(t *testing.T) {
	h := registrytest.NewCredHelper(t)
	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.AuthBasic})
	ctx := testContext(t)
	ref := mustRef(t, reg.Host+"/helped/app:v1")
	im := registrytest.NewImage(t, amd64, 2, 4096)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"credsStore":"`+h.Name+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := registry.LoadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cred := registry.Credential{Username: reg.Username, Password: reg.Password}
	if err := registry.New(registry.Options{}).Login(ctx, reg.Host, cred); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := cfg.Store(reg.Host, cred); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), reg.Password) {
		t.Fatalf("password written to the config file: %s", data)
	}
	c := registry.New(registry.Options{Credentials: cfg})
	pushImage(t, ctx, c, ref, im)
	pullAndCheck(t, ctx, c, ref, im, amd64)
	if err := cfg.Remove(reg.Host); err != nil {
		t.Fatal(err)
	}
	if h.Stored(t, reg.Host) != "" {
		t.Fatal("logout left the credential in the helper")
	}
	c = registry.New(registry.Options{Credentials: cfg})
	if err := c.PushBlob(ctx, ref, im.Config.Desc, bytes.NewReader(im.Config.Data)); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("push after logout: %v, want ErrUnauthorized", err)
	}
}
