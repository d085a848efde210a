package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

// NoImages stands in until the image layer is wired: every call fails with
// a clear 501.
type NoImages struct{}

var errNoImages = fmt.Errorf("the image layer is not wired into this build: %w", errdefs.ErrNotImplemented)

// List returns no images (so info and df work).
func (NoImages) List(context.Context) ([]types.ImageSummary, error) { return nil, nil }

// Inspect fails.
func (NoImages) Inspect(_ context.Context, ref string) (*types.ImageInspect, error) {
	return nil, fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
}

// Pull fails.
func (NoImages) Pull(context.Context, string, io.Writer) error { return errNoImages }

// Import fails.
func (NoImages) Import(context.Context, io.Reader, string, io.Writer) error { return errNoImages }

// Load fails.
func (NoImages) Load(context.Context, io.Reader, io.Writer) error { return errNoImages }

// Remove fails.
func (NoImages) Remove(_ context.Context, ref string, _ bool) ([]types.ImageDeleteItem, error) {
	return nil, fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
}

// Tag fails.
func (NoImages) Tag(context.Context, string, string) error { return errNoImages }

// Resolve fails.
func (NoImages) Resolve(_ context.Context, ref string) (string, imageConfig, error) {
	return "", imageConfig{}, fmt.Errorf("no such image: %s (%v): %w", ref, errNoImages, errdefs.ErrNotFound)
}

// PrepareRootfs fails.
func (NoImages) PrepareRootfs(context.Context, string, string) error { return errNoImages }

// MountRootfs fails.
func (NoImages) MountRootfs(context.Context, string, string, *IDRange) error { return errNoImages }

// WarmIDMap has nothing to ready.
func (NoImages) WarmIDMap(IDRange) {}

// UnmountRootfs has nothing to unmount.
func (NoImages) UnmountRootfs(string) error { return nil }

// RemoveRootfs has nothing to remove.
func (NoImages) RemoveRootfs(context.Context, string) error { return nil }

// RootfsKeys: none.
func (NoImages) RootfsKeys(context.Context) ([]string, error) { return nil, nil }
