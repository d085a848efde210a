// Package imagesvc adapts the image layer (image/service) to the engine's
// Images interface: Docker's image operations with their wire types and
// progress streams, and the container rootfs snapshots.
package imagesvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/estiba/estiba/engine"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/image/archive"
	"github.com/estiba/estiba/image/reference"
	"github.com/estiba/estiba/image/registry"
	"github.com/estiba/estiba/image/service"
	"github.com/estiba/estiba/image/snapshot"
	"github.com/estiba/estiba/runtime/rootfs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Images serves the engine from an image service.
type Images struct {
	S *service.Service
	// Registry is the service's registry client (login uses it).
	Registry Registry
	// RegistryOptions build the per-request clients that carry a
	// client's X-Registry-Auth credential.
	RegistryOptions registry.Options
	// Log receives the warning that idmapped layers are unsupported
	// (slog.Default when nil).
	Log *slog.Logger

	noIDMap atomic.Bool // set once idmapped layers failed here
	userns  usernsCache
	mounts  mountsCache
}

var _ engine.Images = (*Images)(nil)

// Registry adapts the registry client to the service's string references.
type Registry struct {
	C *registry.Client
}

// Resolve resolves ref to its manifest or index.
func (r Registry) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	p, err := reference.Parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
	}
	return r.client(ctx).Resolve(ctx, p)
}

// Fetch reads a blob or manifest.
func (r Registry) Fetch(ctx context.Context, ref string, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	p, err := reference.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
	}
	return r.client(ctx).Fetch(ctx, p, desc, offset)
}

// classify maps the image layer's errors to the engine's classes.
func classify(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, service.ErrNotFound):
		return fmt.Errorf("no such image: %s: %w", what, errdefs.ErrNotFound)
	case errors.Is(err, service.ErrConflict):
		return fmt.Errorf("%v: %w", err, errdefs.ErrConflict)
	case errors.Is(err, service.ErrInvalid):
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
	}
	return err
}

func familiar(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, service.Familiar(n))
	}
	return out
}

// List is docker images.
func (i *Images) List(ctx context.Context) ([]types.ImageSummary, error) {
	imgs, err := i.S.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]types.ImageSummary, 0, len(imgs))
	for _, img := range imgs {
		created := img.Created.Unix()
		if img.Config.Created != nil {
			created = img.Config.Created.Unix()
		}
		out = append(out, types.ImageSummary{ID: string(img.ID), RepoTags: familiar(img.Names), RepoDigests: familiar(img.RepoDigests),
			Created: created, Size: img.Size, SharedSize: -1, Labels: img.Config.Config.Labels, Containers: -1})
	}
	return out, nil
}

// Inspect is docker image inspect.
func (i *Images) Inspect(ctx context.Context, ref string) (*types.ImageInspect, error) {
	img, err := i.S.Inspect(ctx, ref)
	if err != nil {
		return nil, classify(err, ref)
	}
	c := img.Config.Config
	created := img.Created
	if img.Config.Created != nil {
		created = *img.Config.Created
	}
	return &types.ImageInspect{ID: string(img.ID), RepoTags: familiar(img.Names), RepoDigests: familiar(img.RepoDigests),
		Created: created.Format("2006-01-02T15:04:05.999999999Z07:00"), Architecture: img.Config.Architecture, Os: img.Config.OS,
		Size: img.Size, Config: &types.Config{User: c.User, Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint,
			WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal}}, nil
}

func emit(w io.Writer, m types.JSONMessage) {
	json.NewEncoder(w).Encode(m)
}

// Pull is docker pull, with Docker's progress lines.
func (i *Images) Pull(ctx context.Context, ref string, w io.Writer) error {
	name, err := service.Normalize(ref)
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
	}
	pr, _ := reference.Parse(name)
	tag := pr.Tag
	if tag == "" {
		tag = pr.Digest.String()
	}
	tick := newThrottle(100 * time.Millisecond)
	pulled, err := i.S.PullImage(i.withClient(ctx, name), name, ocispec.Platform{}, func(p service.Progress) {
		if p.Status == "resolved" {
			// Only now, as Docker: a pull that fails to resolve has
			// written nothing and is answered with its own status.
			emit(w, types.JSONMessage{Status: "Pulling from " + pr.FamiliarName(), ID: tag})
			return
		}
		if p.Status == "downloading" && p.Current < p.Total && !tick.due(string(p.Layer)) {
			return
		}
		short := strings.TrimPrefix(string(p.Layer), "sha256:")
		if len(short) > 12 {
			short = short[:12]
		}
		m := types.JSONMessage{ID: short, Status: progressStatus(p.Status)}
		if p.Total > 0 && p.Status == "downloading" {
			m.ProgressDetail = &types.ProgressDetail{Current: p.Current, Total: p.Total}
			m.Progress = ProgressBar(p.Current, p.Total)
		}
		emit(w, m)
	})
	if err != nil {
		return pullError(err, name)
	}
	_, repoDigest, _ := strings.Cut(pulled.RepoDigest, "@")
	emit(w, types.JSONMessage{Status: "Digest: " + repoDigest})
	emit(w, types.JSONMessage{Status: "Status: Downloaded newer image for " + service.Familiar(name)})
	return nil
}

func progressStatus(s string) string {
	switch s {
	case "exists":
		return "Already exists"
	case "waiting":
		return "Waiting"
	case "downloading":
		return "Downloading"
	case "downloaded":
		return "Download complete"
	case "extracting":
		return "Extracting"
	case "done":
		return "Pull complete"
	}
	return s
}

// Import is docker import.
func (i *Images) Import(ctx context.Context, r io.Reader, ref string, w io.Writer) error {
	id, err := i.S.Import(ctx, r, ref, archive.ImportOptions{})
	if err != nil {
		return classify(err, ref)
	}
	emit(w, types.JSONMessage{Status: string(id)})
	return nil
}

// Load is docker load.
func (i *Images) Load(ctx context.Context, r io.Reader, w io.Writer) error {
	loaded, err := i.S.Load(ctx, r)
	if err != nil {
		return err
	}
	for _, l := range loaded {
		if len(l.Names) == 0 {
			emit(w, types.JSONMessage{Stream: "Loaded image ID: " + string(l.ID) + "\n"})
		}
		for _, n := range l.Names {
			emit(w, types.JSONMessage{Stream: "Loaded image: " + service.Familiar(n) + "\n"})
		}
	}
	return nil
}

// Remove is docker rmi.
func (i *Images) Remove(ctx context.Context, ref string, force bool) ([]types.ImageDeleteItem, error) {
	rm, err := i.S.Remove(ctx, ref, force)
	if err != nil {
		return nil, classify(err, ref)
	}
	var out []types.ImageDeleteItem
	for _, u := range rm.Untagged {
		out = append(out, types.ImageDeleteItem{Untagged: service.Familiar(u)})
	}
	for _, d := range rm.Deleted {
		out = append(out, types.ImageDeleteItem{Deleted: string(d)})
	}
	return out, nil
}

// Tag is docker tag.
func (i *Images) Tag(ctx context.Context, source, target string) error {
	return classify(i.S.Tag(ctx, source, target), source)
}

// Resolve returns the image's id and config.
func (i *Images) Resolve(ctx context.Context, ref string) (string, ocispec.ImageConfig, error) {
	img, err := i.S.Inspect(ctx, ref)
	if err != nil {
		return "", ocispec.ImageConfig{}, classify(err, ref)
	}
	return string(img.ID), img.Config.Config, nil
}

// PrepareRootfs makes the container's snapshot.
func (i *Images) PrepareRootfs(ctx context.Context, imageID, key string) error {
	r, err := i.S.PrepareRootfs(ctx, imageID, key, false)
	if err == nil {
		i.mounts.put(key, r.Mounts)
	}
	return classify(err, imageID)
}

// mountsCache keeps the mounts of the snapshots made here, for their
// first start: they are the snapshot's id and its parent chain, which do
// not change while it exists, and reading them again costs a transaction
// and a record decode per layer. A start after a restart of the engine
// reads them from the snapshot store.
type mountsCache struct {
	mu sync.Mutex
	m  map[string][]snapshot.Mount
}

func (c *mountsCache) put(key string, ms []snapshot.Mount) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string][]snapshot.Mount)
	}
	c.m[key] = ms
}

// take returns and forgets key's mounts: only the first start is spared
// the read, and the cache holds no container past it.
func (c *mountsCache) take(key string) ([]snapshot.Mount, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms, ok := c.m[key]
	delete(c.m, key)
	return ms, ok
}

// MountRootfs mounts the container's snapshot on target. With ids, the
// image's layers are idmapped into the container's range (the layers are
// shared and never chowned); where the kernel or the file system cannot,
// it warns once and mounts them as they are: the image's files then show
// as nobody (65534) in the container, which owns only its / and what it
// writes.
func (i *Images) MountRootfs(ctx context.Context, key, target string, ids *engine.IDRange) error {
	ms, ok := i.mounts.take(key)
	if !ok {
		var err error
		if ms, err = i.S.RootfsMounts(ctx, key); err != nil {
			return err
		}
	}
	if ids == nil {
		return snapshot.MountAll(ms, target)
	}
	if !i.noIDMap.Load() {
		err := i.mountIDMapped(ms, target, ids)
		if !errors.Is(err, snapshot.ErrIDMapUnsupported) {
			return err
		}
		if !i.noIDMap.Swap(true) {
			log := i.Log
			if log == nil {
				log = slog.Default()
			}
			log.Warn("user namespace containers see image files as nobody: their layers cannot be idmapped here", "err", err)
		}
	}
	// Still, the container's root owns its / (the upper's root).
	return snapshot.MountIDMapped(ms, target, snapshot.IDMap{UID: int(ids.HostID), GID: int(ids.HostID)})
}

func (i *Images) mountIDMapped(ms []snapshot.Mount, target string, ids *engine.IDRange) error {
	ns, err := i.userns.get(*ids)
	if err != nil {
		return fmt.Errorf("idmapped rootfs: %w", err)
	}
	defer ns.Close()
	return snapshot.MountIDMapped(ms, target, snapshot.IDMap{UserNS: ns, UID: int(ids.HostID), GID: int(ids.HostID)})
}

// usernsCache keeps the last user namespaces made for idmapping. Making one
// costs a clone and a few /proc writes (~0.5 ms here), and ranges come back:
// the store hands out the lowest free one, so run --rm loops and restarts
// reuse it. The namespace only lends its mapping to mount_setattr; a
// bounded number stay open, not one per container.
type usernsCache struct {
	mu     sync.Mutex
	fds    map[engine.IDRange]*os.File
	order  []engine.IDRange                 // oldest first
	making map[engine.IDRange]chan struct{} // ranges being made: closed once done
	// newNS makes a range's namespace; nil is newUserNS (tests replace it).
	newNS func(engine.IDRange) (*os.File, error)
}

const usernsCacheSize = 32

func newUserNS(ids engine.IDRange) (*os.File, error) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: ids.HostID, Size: ids.Size}}
	return rootfs.NewUserNS(m, m)
}

// get returns a descriptor of its own (the caller closes it): the cache may
// close its copy meanwhile, and a closed number reused by another range's
// namespace would idmap with the wrong mapping. The namespace is made
// outside the lock: concurrent starts (each with a range of its own) do not
// wait for each other; a get of a range being made (by warm, or another
// start) waits for it rather than making a second one.
func (c *usernsCache) get(ids engine.IDRange) (*os.File, error) {
	c.mu.Lock()
	for {
		if f, ok := c.fds[ids]; ok {
			defer c.mu.Unlock()
			return dup(f)
		}
		ch, busy := c.making[ids]
		if !busy {
			break
		}
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
	ch := make(chan struct{})
	if c.making == nil {
		c.making = make(map[engine.IDRange]chan struct{})
	}
	c.making[ids] = ch
	mk := c.newNS
	c.mu.Unlock()
	if mk == nil {
		mk = newUserNS
	}
	f, err := mk(ids)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.making, ids)
	close(ch)
	if err != nil {
		return nil, err
	}
	if c.fds == nil {
		c.fds = make(map[engine.IDRange]*os.File)
	}
	if len(c.order) == usernsCacheSize {
		c.fds[c.order[0]].Close()
		delete(c.fds, c.order[0])
		c.order = c.order[1:]
	}
	c.fds[ids] = f
	c.order = append(c.order, ids)
	return dup(f)
}

// warm makes the range's namespace in the background, for a get to come.
// A failure is left for that get to meet again.
func (c *usernsCache) warm(ids engine.IDRange) {
	go func() {
		if f, err := c.get(ids); err == nil {
			f.Close()
		}
	}()
}

func dup(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup user namespace: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// WarmIDMap starts making, in the background, the user namespace that
// MountRootfs will idmap a container's layers with: create calls it once
// the container has its range, so that the start finds it made (it is the
// largest part of the idmapped mount).
func (i *Images) WarmIDMap(ids engine.IDRange) {
	if !i.noIDMap.Load() {
		i.userns.warm(ids)
	}
}

// UnmountRootfs unmounts target.
func (i *Images) UnmountRootfs(target string) error { return snapshot.Unmount(target) }

// RootfsKeys lists the container snapshots.
func (i *Images) RootfsKeys(ctx context.Context) ([]string, error) { return i.S.RootfsKeys(ctx) }

// RemoveRootfs drops the snapshot.
func (i *Images) RemoveRootfs(ctx context.Context, key string) error {
	i.mounts.take(key) // a container removed before its first start
	return i.S.RemoveRootfs(ctx, key)
}
