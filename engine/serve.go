package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/estiba/estiba/engine/api"
	"github.com/estiba/estiba/engine/api/types"
	"golang.org/x/sys/unix"
)

// Options are what Serve needs besides Config.
type Options struct {
	Config
	Socket       string // the API's unix socket path
	Images       Images
	Networks     Networks // nil: not wired
	StartMonitor func() error
	Log          *slog.Logger
}

// Serve runs the daemon and its API until ctx ends.
func Serve(ctx context.Context, o Options) error {
	d, err := New(ctx, o.Config, o.Images, o.Networks, o.StartMonitor, o.Log)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.ReconcileNetworks(ctx); err != nil {
		o.Log.Warn("network reconcile", "err", err)
	}
	if err := os.MkdirAll(filepath.Dir(o.Socket), 0o755); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	l, err := api.ListenUnix(o.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(o.Socket)
	srv := api.New(d, d, o.Images, d, d, d.VersionInfo(), o.Log)
	if n := d.NetworkAPI(); n != nil {
		srv.SetNetworks(n)
	}
	srv.SetUpdater(d)
	o.Log.Info("estiba daemon listening", "socket", o.Socket, "root", o.Root)
	return srv.Serve(ctx, l)
}

// VersionInfo answers /version.
func (d *Daemon) VersionInfo() types.Version {
	v := types.Version{Version: d.cfg.Version, APIVersion: types.APIVersion, MinAPIVersion: types.MinAPIVersion,
		GitCommit: d.cfg.Version, GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH}
	v.Platform.Name = "estiba"
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		v.KernelVersion = unix.ByteSliceToString(uts.Release[:])
	}
	return v
}
