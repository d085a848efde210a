package api

import (
	"context"
	"io"
	"time"

	"github.com/estiba/estiba/engine/api/types"
)

// Containers is what the container endpoints need from the engine.
type Containers interface {
	Create(ctx context.Context, name string, req *types.ContainerCreateRequest) (*types.ContainerCreateResponse, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, timeout *int, signal string) error
	Kill(ctx context.Context, ref, signal string) error
	Restart(ctx context.Context, ref string, timeout *int) error
	Remove(ctx context.Context, ref string, force bool) error
	List(ctx context.Context, opts ListOptions) ([]types.ContainerSummary, error)
	Inspect(ctx context.Context, ref string) (*types.ContainerJSON, error)
	// Wait returns once the container reaches condition ("not-running",
	// "next-exit" or "removed"); the channel yields one response.
	Wait(ctx context.Context, ref, condition string) (<-chan types.WaitResponse, error)
	Logs(ctx context.Context, ref string, opts LogOptions, w io.Writer) error
	Attach(ctx context.Context, ref string, opts AttachOptions, conn io.ReadWriteCloser) error
	Resize(ctx context.Context, ref string, h, w uint16) error
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Top(ctx context.Context, ref, psArgs string) (*types.TopResponse, error)
	Stats(ctx context.Context, ref string, stream bool, w io.Writer) error
	Prune(ctx context.Context) (*types.PruneReport, error)
}

// Execs is what the exec endpoints need.
type Execs interface {
	ExecCreate(ctx context.Context, ref string, cfg *types.ExecConfig) (string, error)
	// ExecStart runs the exec; with detach false it streams over conn and
	// returns when the process's output ends.
	ExecStart(ctx context.Context, execID string, detach bool, conn io.ReadWriteCloser) error
	ExecInspect(ctx context.Context, execID string) (*types.ExecInspect, error)
	ExecResize(ctx context.Context, execID string, h, w uint16) error
}

// Images is what the image endpoints need (the engine forwards them to the
// image layer).
type Images interface {
	List(ctx context.Context) ([]types.ImageSummary, error)
	Inspect(ctx context.Context, ref string) (*types.ImageInspect, error)
	// Pull writes JSONMessage progress lines to progress.
	Pull(ctx context.Context, ref string, progress io.Writer) error
	// Import makes a one-layer image from a rootfs tarball.
	Import(ctx context.Context, r io.Reader, ref string, progress io.Writer) error
	// Load reads a docker-save/OCI archive.
	Load(ctx context.Context, r io.Reader, progress io.Writer) error
	Remove(ctx context.Context, ref string, force bool) ([]types.ImageDeleteItem, error)
	Tag(ctx context.Context, source, target string) error
}

// System is the rest: info, events, disk usage.
type System interface {
	Info(ctx context.Context) (*types.Info, error)
	Events(ctx context.Context, since, until time.Time, filters map[string][]string) (<-chan types.Event, error)
	DiskUsage(ctx context.Context) (*types.DiskUsage, error)
}

// ListOptions are docker ps's.
type ListOptions struct {
	All     bool
	Limit   int
	Filters map[string][]string
}

// LogOptions are docker logs's.
type LogOptions struct {
	Follow     bool
	Stdout     bool
	Stderr     bool
	Timestamps bool
	Tail       int // -1: all
	Since      time.Time
	Until      time.Time
}

// AttachOptions are docker attach's.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Stream, Logs          bool
	// DetachKeys end the attachment, not the container, when read on
	// stdin (validated here; "" is Docker's default).
	DetachKeys []byte
}

// Volumes is what the volume endpoints need; the values are encoded as
// they are (Docker's volume shape).
type Volumes interface {
	VolumeList(ctx context.Context) ([]*types.Volume, error)
	VolumeCreate(ctx context.Context, name string) (*types.Volume, error)
	VolumeInspect(ctx context.Context, name string) (*types.Volume, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
}
