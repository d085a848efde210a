package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (d *Daemon) volumeDir(name string) string { return filepath.Join(d.cfg.Root, "volumes", name) }

func (d *Daemon) volume(name string) (*types.Volume, error) {
	st, err := os.Stat(filepath.Join(d.volumeDir(name), "_data"))
	if err != nil {
		return nil, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	return &types.Volume{Name: name, Driver: "local", Mountpoint: filepath.Join(d.volumeDir(name), "_data"),
		CreatedAt: st.ModTime().UTC().Format(time.RFC3339), Scope: "local", Labels: map[string]string{}, Options: map[string]string{}}, nil
}

// VolumeList is docker volume ls.
func (d *Daemon) VolumeList(ctx context.Context) ([]*types.Volume, error) {
	ents, err := os.ReadDir(filepath.Join(d.cfg.Root, "volumes"))
	if err != nil {
		return nil, err
	}
	out := []*types.Volume{}
	for _, e := range ents {
		if v, err := d.volume(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// VolumeCreate is docker volume create (idempotent, as Docker's).
func (d *Daemon) VolumeCreate(ctx context.Context, name string) (*types.Volume, error) {
	if name == "" {
		name = newID()
	}
	if !volumeName.MatchString(name) {
		return nil, fmt.Errorf("invalid volume name %q: %w", name, errdefs.ErrInvalid)
	}
	if err := os.MkdirAll(filepath.Join(d.volumeDir(name), "_data"), 0o755); err != nil {
		return nil, err
	}
	return d.volume(name)
}

// VolumeInspect is docker volume inspect.
func (d *Daemon) VolumeInspect(ctx context.Context, name string) (*types.Volume, error) {
	return d.volume(name)
}

// VolumeRemove is docker volume rm: refused while a container names it.
func (d *Daemon) VolumeRemove(ctx context.Context, name string, force bool) error {
	if _, err := d.volume(name); err != nil {
		if force {
			return nil
		}
		return err
	}
	list, err := d.store.List()
	if err != nil {
		return err
	}
	for _, c := range list {
		for _, b := range c.HostConfig.Binds {
			if strings.SplitN(b, ":", 2)[0] == name {
				return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, c.ID, errdefs.ErrConflict)
			}
		}
		for _, m := range c.HostConfig.Mounts {
			if m.Source == name {
				return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, c.ID, errdefs.ErrConflict)
			}
		}
	}
	return os.RemoveAll(d.volumeDir(name))
}
