package service

import (
	"context"
	"io"

	"github.com/estiba/estiba/image/reference"
	"github.com/estiba/estiba/image/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RegistryClient adapts the registry client to the Registry and Pusher
// interfaces Options takes:
//
//	c := service.RegistryClient(registry.New(registry.Options{…}))
//	svc, err := service.Open(root, service.Options{Registry: c, Pusher: c})
func RegistryClient(c *registry.Client) interface {
	Registry
	Pusher
} {
	return clientAdapter{c}
}

type clientAdapter struct{ c *registry.Client }

func (a clientAdapter) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return a.c.Resolve(ctx, r)
}

func (a clientAdapter) Fetch(ctx context.Context, ref string, desc ocispec.Descriptor, off int64) (io.ReadCloser, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, err
	}
	return a.c.Fetch(ctx, r, desc, off)
}

func (a clientAdapter) Push(ctx context.Context, ref string, desc ocispec.Descriptor, rd io.Reader) error {
	r, err := reference.Parse(ref)
	if err != nil {
		return err
	}
	return a.c.Push(ctx, r, desc, rd)
}
