package registry

import (
	"context"
	"io"

	"github.com/estiba/estiba/image/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ByName adapts a Client to callers that pass references as strings, such as
// image/service's Registry and Pusher interfaces. Strings are parsed with
// reference.Parse (so "alpine" means docker.io/library/alpine:latest).
type ByName struct{ Client *Client }

// Resolve is Client.Resolve for a reference string.
func (n ByName) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return n.Client.Resolve(ctx, r)
}

// Fetch is Client.Fetch for a reference string.
func (n ByName) Fetch(ctx context.Context, ref string, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, err
	}
	return n.Client.Fetch(ctx, r, desc, offset)
}

// Push is Client.Push for a reference string: a manifest is stored under the
// reference's tag (or its digest when the string has none).
func (n ByName) Push(ctx context.Context, ref string, desc ocispec.Descriptor, r io.Reader) error {
	parsed, err := reference.ParseName(ref)
	if err != nil {
		return err
	}
	return n.Client.Push(ctx, parsed, desc, r)
}
