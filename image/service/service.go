// Package service is the image layer's front: pull, push, load, save,
// import, list, inspect, tag, remove, prune, and the rootfs mounts plus
// config defaults the engine needs to run a container from an image.
//
// Data layout under the root directory:
//
//	content/     blobs (image/content)
//	snapshots/   layer snapshots (image/snapshot)
//	images.db    names and images (image/metadata)
//
// The engine, to run a container from an image:
//
//	svc, _ := service.Open(dataRoot+"/image", service.Options{Registry: c, Pusher: c})
//	rf, def, err := svc.MountRootfs(ctx, "alpine", containerID, bundle+"/rootfs", false)
//	// def.Env, def.Entrypoint/Cmd, def.WorkingDir, def.User{UID,GID,AdditionalGids},
//	// def.ExposedPorts, def.Volumes, def.Labels, def.StopSignal; rf.ImageID
//	…
//	svc.UnmountRootfs(ctx, containerID, bundle+"/rootfs")
//
// or, to mount elsewhere (another mount namespace): PrepareRootfs returns
// the mounts (snapshot.MountAll applies them) and Defaults computes the
// defaults from the mounted rootfs; RootfsMounts gives them again after a
// restart; RemoveRootfs deletes the container's writable layer.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/estiba/estiba/image/archive"
	"github.com/estiba/estiba/image/content"
	"github.com/estiba/estiba/image/defaults"
	"github.com/estiba/estiba/image/metadata"
	"github.com/estiba/estiba/image/snapshot"
	"github.com/estiba/estiba/image/unpack"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Errors the API edge classifies.
var (
	ErrNotFound = metadata.ErrNotFound
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid argument")
)

// Registry is the part of the registry client Pull uses.
type Registry interface {
	// Resolve returns the descriptor (manifest or index) ref names.
	Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error)
	// Fetch reads a blob or manifest of ref's repository from offset on.
	Fetch(ctx context.Context, ref string, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error)
}

// Pusher is the part of the registry client Push uses. Push uploads desc's
// bytes to ref's repository; for a manifest it also tags ref.
type Pusher interface {
	Push(ctx context.Context, ref string, desc ocispec.Descriptor, r io.Reader) error
}

// Options configure a Service.
type Options struct {
	Registry Registry // nil: Pull fails with a clear error
	Pusher   Pusher   // nil: Push fails with a clear error
	Unpack   unpack.Options
	// PullConcurrency bounds parallel layer downloads (default 3).
	PullConcurrency int
}

// Service manages images under one root.
type Service struct {
	root    string
	opts    Options
	content *content.LocalStore
	snaps   *snapshot.Snapshotter
	meta    *metadata.Store
	fetcher *content.Fetcher
	// gc: writers (pull, load, import) hold it shared so a collection
	// never deletes blobs they committed but have not recorded yet.
	gc sync.RWMutex
	// metas: decoded manifests and configs (content-addressed).
	metas metaCache
}

// Open opens (creating) the image store under root.
func Open(root string, opts Options) (*Service, error) {
	if opts.PullConcurrency == 0 {
		opts.PullConcurrency = 3
	}
	cs, err := content.Open(filepath.Join(root, "content"), content.Options{})
	if err != nil {
		return nil, err
	}
	sn, err := snapshot.Open(filepath.Join(root, "snapshots"))
	if err != nil {
		return nil, err
	}
	md, err := metadata.Open(root)
	if err != nil {
		sn.Close()
		return nil, err
	}
	return &Service{root: root, opts: opts, content: cs, snaps: sn, meta: md, fetcher: &content.Fetcher{Store: cs}}, nil
}

// Close releases the databases.
func (s *Service) Close() error {
	return errors.Join(s.meta.Close(), s.snaps.Close())
}

// Image is an image as List and Inspect report it.
type Image struct {
	ID       digest.Digest // config digest
	Names    []string      // normalized tags (name:tag)
	Manifest ocispec.Descriptor
	Config   ocispec.Image // includes History
	Size     int64         // sum of layer blob sizes
	Created  time.Time     // when stored here

	// RepoDigests are the normalized repository digests (name@sha256:…):
	// the manifest or index digest a registry served the image under on
	// pull, or took it under on push.
	RepoDigests []string
}

func (s *Service) image(ctx context.Context, r metadata.Record) (Image, error) {
	m, cfg, err := s.manifest(ctx, r.Manifest)
	if err != nil {
		return Image{}, err
	}
	img := Image{ID: r.ID, Manifest: r.Manifest, Created: r.Created, Config: cfg}
	img.Names, img.RepoDigests = splitNames(r.Names)
	for _, l := range m.Layers {
		img.Size += l.Size
	}
	return img, nil
}

// List returns all images, newest first.
func (s *Service) List(ctx context.Context) ([]Image, error) {
	recs, err := s.meta.List()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(recs))
	for _, r := range recs {
		img, err := s.image(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", r.ID, err)
		}
		out = append(out, img)
	}
	return out, nil
}

// resolve finds an image by name, full ID or unique ID prefix.
func (s *Service) resolve(ref string) (metadata.Record, error) {
	if n, err := Normalize(ref); err == nil {
		if id, err := s.meta.Resolve(n); err == nil {
			return s.meta.Get(id)
		}
	}
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) >= 4 && strings.Trim(hex, "0123456789abcdef") == "" {
		recs, err := s.meta.List()
		if err != nil {
			return metadata.Record{}, err
		}
		var found []metadata.Record
		for _, r := range recs {
			if strings.HasPrefix(r.ID.Encoded(), hex) {
				found = append(found, r)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return metadata.Record{}, fmt.Errorf("image %q is ambiguous: %w", ref, ErrConflict)
		}
	}
	return metadata.Record{}, fmt.Errorf("image %q: %w", ref, ErrNotFound)
}

// Inspect returns one image by name or ID.
func (s *Service) Inspect(ctx context.Context, ref string) (Image, error) {
	r, err := s.resolve(ref)
	if err != nil {
		return Image{}, err
	}
	return s.image(ctx, r)
}

// Tag gives the image src the additional name target.
func (s *Service) Tag(ctx context.Context, src, target string) error {
	r, err := s.resolve(src)
	if err != nil {
		return err
	}
	n, err := Normalize(target)
	if err != nil {
		return err
	}
	if isDigestRef(n) {
		return fmt.Errorf("tag %s: refusing to create a tag with a digest reference: %w", target, ErrInvalid)
	}
	return s.meta.Tag(r.ID, n)
}

// record makes images visible, after syncing their files: a listed image
// must survive a crash complete.
func (s *Service) record(imgs []archive.Image, extraNames ...string) error {
	if err := syncfs(s.root); err != nil {
		return err
	}
	for _, img := range imgs {
		var names []string
		for _, n := range append(img.Names, extraNames...) {
			nn, err := Normalize(n)
			if err != nil {
				continue // e.g. a bare OCI ref.name like "latest"
			}
			names = append(names, nn)
		}
		if err := s.meta.Put(img.ConfigDesc.Digest, img.Manifest, names...); err != nil {
			return fmt.Errorf("record image %s: %w", img.ConfigDesc.Digest, err)
		}
	}
	return nil
}

func syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// Loaded reports one image Load stored.
type Loaded struct {
	ID    digest.Digest
	Names []string
}

// Load stores the images of a docker-archive or OCI layout read from r.
func (s *Service) Load(ctx context.Context, r io.Reader) ([]Loaded, error) {
	s.gc.RLock()
	defer s.gc.RUnlock()
	imgs, err := archive.Load(ctx, r, s.content, s.snaps, s.opts.Unpack)
	if err != nil {
		return nil, err
	}
	if err := s.record(imgs); err != nil {
		return nil, err
	}
	out := make([]Loaded, len(imgs))
	for i, img := range imgs {
		out[i] = Loaded{ID: img.ConfigDesc.Digest, Names: img.Names}
	}
	return out, nil
}

// Import makes a single-layer image from a rootfs tarball; name may be "".
func (s *Service) Import(ctx context.Context, r io.Reader, name string, opts archive.ImportOptions) (digest.Digest, error) {
	var names []string
	if name != "" {
		n, err := Normalize(name)
		if err != nil {
			return "", err
		}
		if isDigestRef(n) {
			return "", fmt.Errorf("import as %s: a digest reference is not a tag: %w", name, ErrInvalid)
		}
		names = append(names, n)
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	img, err := archive.Import(ctx, r, s.content, s.snaps, s.opts.Unpack, opts)
	if err != nil {
		return "", err
	}
	if err := s.record([]archive.Image{img}, names...); err != nil {
		return "", err
	}
	return img.ConfigDesc.Digest, nil
}

// Save writes the named images as one docker-archive.
func (s *Service) Save(ctx context.Context, w io.Writer, refs []string) error {
	var imgs []archive.SaveImage
	for _, ref := range refs {
		r, err := s.resolve(ref)
		if err != nil {
			return err
		}
		si := archive.SaveImage{Manifest: r.Manifest}
		tags, _ := splitNames(r.Names)
		if n, err := Normalize(ref); err == nil && contains(r.Names, n) {
			if !isDigestRef(n) { // a digest is no RepoTag, as docker save
				si.Names = []string{Familiar(n)} // the name asked for, as docker does
			}
		} else {
			for _, n := range tags {
				si.Names = append(si.Names, Familiar(n))
			}
		}
		imgs = append(imgs, si)
	}
	return archive.Save(ctx, w, s.content, imgs)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Removed reports what Remove did.
type Removed struct {
	Untagged []string
	Deleted  []digest.Digest
}

// Remove untags ref; an image left without names is deleted with the blobs
// and snapshots nothing else uses. Removing a tag also drops the digest
// references of its repository when no other tag of that repository
// remains (as Docker does). An image ID deletes the image and all its names
// when they are one repository's with at most one tag, else only with force.
// An image a container uses is not deleted.
func (s *Service) Remove(ctx context.Context, ref string, force bool) (Removed, error) {
	r, err := s.resolve(ref)
	if err != nil {
		return Removed{}, err
	}
	var out Removed
	n, nerr := Normalize(ref)
	if nerr == nil && contains(r.Names, n) {
		untag := []string{n}
		if !isDigestRef(n) && !hasTagOf(r.Names, n) {
			for _, d := range r.Names {
				if isDigestRef(d) && repoOf(d) == repoOf(n) {
					untag = append(untag, d)
				}
			}
		}
		if len(untag) < len(r.Names) {
			for _, u := range untag {
				if _, err := s.meta.Untag(u); err != nil {
					return out, err
				}
			}
			out.Untagged = untag
			return out, nil
		}
	} else if !singleReference(r.Names) && !force {
		return out, fmt.Errorf("image %s has several names %v (use force): %w", r.ID, r.Names, ErrConflict)
	}
	if users := s.users(ctx, r); len(users) > 0 && !force {
		return out, fmt.Errorf("image %s is used by containers %v: %w", r.ID, users, ErrConflict)
	}
	if err := s.meta.Delete(r.ID); err != nil {
		return out, err
	}
	out.Untagged, out.Deleted = r.Names, []digest.Digest{r.ID}
	return out, s.collect(ctx)
}

// hasTagOf reports whether names hold a tag of n's repository other than n.
func hasTagOf(names []string, n string) bool {
	for _, o := range names {
		if o != n && !isDigestRef(o) && repoOf(o) == repoOf(n) {
			return true
		}
	}
	return false
}

// singleReference is Docker's test for removing an image by ID without
// force: all names of one repository, at most one of them a tag.
func singleReference(names []string) bool {
	tags := 0
	for _, n := range names {
		if repoOf(n) != repoOf(names[0]) {
			return false
		}
		if !isDigestRef(n) {
			tags++
		}
	}
	return tags <= 1
}

// users lists container snapshots made from image r.
func (s *Service) users(ctx context.Context, r metadata.Record) []string {
	top, err := s.topChain(ctx, r)
	if err != nil {
		return nil
	}
	var keys []string
	s.snaps.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind != snapshot.Committed && i.Parent == top {
			keys = append(keys, strings.TrimPrefix(i.Key, containerPrefix))
		}
		return nil
	})
	return keys
}

// Prune deletes images without names (dangling) that no container uses.
func (s *Service) Prune(ctx context.Context) ([]digest.Digest, error) {
	recs, err := s.meta.List()
	if err != nil {
		return nil, err
	}
	var deleted []digest.Digest
	for _, r := range recs {
		if tags, _ := splitNames(r.Names); len(tags) == 0 && len(s.users(ctx, r)) == 0 {
			if err := s.meta.Delete(r.ID); err != nil {
				return deleted, err
			}
			deleted = append(deleted, r.ID)
		}
	}
	return deleted, s.collect(ctx)
}

// collect deletes blobs and snapshots no recorded image references.
func (s *Service) collect(ctx context.Context) error {
	s.gc.Lock()
	defer s.gc.Unlock()
	recs, err := s.meta.List()
	if err != nil {
		return err
	}
	blobs := map[digest.Digest]bool{}
	tops := map[string]bool{}
	for _, r := range recs {
		blobs[r.Manifest.Digest] = true
		m, cfg, err := s.manifest(ctx, r.Manifest)
		if err != nil {
			return fmt.Errorf("gc: image %s: %w", r.ID, err)
		}
		blobs[m.Config.Digest] = true
		for _, l := range m.Layers {
			blobs[l.Digest] = true
		}
		tops[topChain(cfg)] = true
	}
	err = s.content.Walk(ctx, func(i content.Info) error {
		if !blobs[i.Digest] {
			return s.content.Delete(ctx, i.Digest)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc blobs: %w", err)
	}
	if _, err := s.snaps.GC(ctx, tops); err != nil {
		return fmt.Errorf("gc snapshots: %w", err)
	}
	return nil
}

func (s *Service) manifest(ctx context.Context, d ocispec.Descriptor) (ocispec.Manifest, ocispec.Image, error) {
	if m, cfg, ok := s.metas.get(d.Digest); ok {
		return m, cfg, nil
	}
	var m ocispec.Manifest
	var cfg ocispec.Image
	mb, err := archive.ReadBlob(ctx, s.content, d)
	if err != nil {
		return m, cfg, err
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return m, cfg, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	cb, err := archive.ReadBlob(ctx, s.content, m.Config)
	if err != nil {
		return m, cfg, err
	}
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return m, cfg, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	s.metas.put(d.Digest, m, cfg)
	return m, cfg, nil
}

func topChain(cfg ocispec.Image) string {
	chain := ""
	for _, d := range cfg.RootFS.DiffIDs {
		chain = archive.ChainID(chain, d)
	}
	return chain
}

func (s *Service) topChain(ctx context.Context, r metadata.Record) (string, error) {
	_, cfg, err := s.manifest(ctx, r.Manifest)
	return topChain(cfg), err
}

const containerPrefix = "container-"

// Rootfs is what the engine needs to create a container from an image.
type Rootfs struct {
	ImageID digest.Digest
	// Mounts, applied in order on the container's rootfs directory
	// (snapshot.MountAll), give the image's filesystem with a writable
	// (or, for ReadOnly, read-only) top.
	Mounts []snapshot.Mount
	// Config is the image config; pass it with the mounted rootfs path
	// to Defaults for env, cmd, user, etc.
	Config ocispec.Image
}

// PrepareRootfs creates the container's snapshot (key: the container ID)
// on top of image and returns its mounts and the image config.
func (s *Service) PrepareRootfs(ctx context.Context, image, key string, readOnly bool) (Rootfs, error) {
	r, err := s.resolve(image)
	if err != nil {
		return Rootfs{}, err
	}
	_, cfg, err := s.manifest(ctx, r.Manifest)
	if err != nil {
		return Rootfs{}, err
	}
	top := topChain(cfg)
	var ms []snapshot.Mount
	switch {
	case readOnly && top != "":
		ms, err = s.snaps.View(ctx, containerPrefix+key, top)
	default:
		ms, err = s.snaps.Prepare(ctx, containerPrefix+key, top)
	}
	if err != nil {
		return Rootfs{}, fmt.Errorf("container %s rootfs: %w", key, err)
	}
	return Rootfs{ImageID: r.ID, Mounts: ms, Config: cfg}, nil
}

// RootfsMounts returns the mounts of an existing container snapshot (after
// an engine restart).
func (s *Service) RootfsMounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	return s.snaps.Mounts(ctx, containerPrefix+key)
}

// RootfsKeys lists the keys of every container snapshot (PrepareRootfs's).
func (s *Service) RootfsKeys(ctx context.Context) ([]string, error) {
	var keys []string
	err := s.snaps.Walk(ctx, func(i snapshot.Info) error {
		if k, ok := strings.CutPrefix(i.Key, containerPrefix); ok {
			keys = append(keys, k)
		}
		return nil
	})
	return keys, err
}

// RemoveRootfs deletes the container's snapshot (unmount it first).
func (s *Service) RemoveRootfs(ctx context.Context, key string) error {
	err := s.snaps.Remove(ctx, containerPrefix+key)
	if errors.Is(err, snapshot.ErrNotFound) {
		return nil
	}
	return err
}

// Defaults computes a container's defaults from the image config and its
// mounted rootfs (for /etc/passwd and /etc/group).
func Defaults(cfg ocispec.Image, mountedRootfs string) (defaults.Defaults, error) {
	return defaults.FromImage(cfg.Config, mountedRootfs)
}

// MountRootfs is PrepareRootfs, then mounting on target and computing the
// defaults, undone on error: the one call an engine needs before creating
// the container's runtime spec. UnmountRootfs undoes it.
func (s *Service) MountRootfs(ctx context.Context, image, key, target string, readOnly bool) (Rootfs, defaults.Defaults, error) {
	rf, err := s.PrepareRootfs(ctx, image, key, readOnly)
	if err != nil {
		return Rootfs{}, defaults.Defaults{}, err
	}
	if err := snapshot.MountAll(rf.Mounts, target); err != nil {
		s.RemoveRootfs(ctx, key)
		return Rootfs{}, defaults.Defaults{}, err
	}
	d, err := Defaults(rf.Config, target)
	if err != nil {
		snapshot.Unmount(target)
		s.RemoveRootfs(ctx, key)
		return Rootfs{}, defaults.Defaults{}, err
	}
	return rf, d, nil
}

// UnmountRootfs unmounts target and deletes the container's snapshot.
func (s *Service) UnmountRootfs(ctx context.Context, key, target string) error {
	if err := snapshot.Unmount(target); err != nil {
		return err
	}
	return s.RemoveRootfs(ctx, key)
}
