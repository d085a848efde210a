// Package engine is the estiba daemon: container records and lifecycle on
// top of the state store, the monitor (which owns container processes,
// output and exits), the image layer and the network layer. The API server
// (engine/api) calls it; cmd/estibad wires it.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/estiba/estiba/engine/api"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/engine/specgen"
	"github.com/estiba/estiba/engine/store"
	"github.com/estiba/estiba/internal/topdir"
	"github.com/estiba/estiba/runtime/caps"
	"github.com/estiba/estiba/runtime/cgroups"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Images is what the engine needs from the image layer: Docker's image
// operations (served as-is by the API) plus a container's rootfs.
type Images interface {
	api.Images
	// Resolve returns the image's id and its config defaults.
	Resolve(ctx context.Context, ref string) (id string, cfg imagespec.ImageConfig, err error)
	// PrepareRootfs makes a writable snapshot of the image for the
	// container key.
	PrepareRootfs(ctx context.Context, imageID, key string) error
	// MountRootfs mounts the container's snapshot on target (at every
	// start: the rootfs is mounted only while the container runs). With
	// ids (a user namespace container) the image's files show with the
	// container's ids (root's as its root) and its writes land as them.
	MountRootfs(ctx context.Context, key, target string, ids *IDRange) error
	// WarmIDMap readies, in the background, what MountRootfs needs for
	// ids, ahead of a start to come.
	WarmIDMap(ids IDRange)
	// UnmountRootfs undoes MountRootfs; nothing mounted is fine.
	UnmountRootfs(target string) error
	// RemoveRootfs drops the snapshot.
	RemoveRootfs(ctx context.Context, key string) error
	// RootfsKeys lists the keys of every container snapshot.
	RootfsKeys(ctx context.Context) ([]string, error)
}

// IDRange is a container's user namespace: its ids 0..Size-1 are the host's
// HostID..HostID+Size-1.
type IDRange struct{ HostID, Size uint32 }

// Networks is what the engine needs from the network layer.
type Networks interface {
	// Setup attaches the container (its init is pid, created and not yet
	// started, in a fresh network namespace) to network and publishes
	// ports ("80/tcp" → bindings).
	Setup(ctx context.Context, id, name string, pid int, network string, ports map[string][]types.PortBinding) (*NetInfo, error)
	// Teardown undoes Setup; it is idempotent.
	Teardown(ctx context.Context, id string) error
}

// NetInfo is what Setup gives back: the address, the published ports and
// the container's /etc/hosts and /etc/resolv.conf.
type NetInfo struct {
	Network    string
	IP         string
	Gateway    string
	Ports      map[string][]types.PortBinding
	Hosts      []byte
	ResolvConf []byte
}

// Config is the daemon's configuration (flags and daemon.json).
type Config struct {
	Root          string // --data-root
	MonitorSocket string
	PidsLimit     int64 // default pids limit; 0 = none
	// UsernsFirstID/UsernsMaxID bound the host ids handed out to
	// containers, 65536 each (--userns=auto).
	UsernsFirstID, UsernsMaxID uint32
	LogMaxSize                 int64
	LogMaxFiles                int
	InitPath                   string // the binary bind-mounted for --init
	Version                    string
}

// Daemon is the engine.
type Daemon struct {
	cfg      Config
	store    *store.Store
	mon      *monitor.Client
	images   Images
	networks Networks // nil: networking not wired
	log      *slog.Logger
	events   *eventBus

	mu       sync.Mutex // guards the maps below
	waiters  map[string][]*waiter
	execs    map[string]*execRecord
	timers   map[string]*time.Timer // pending restarts
	starting map[string]bool        // containers with a start in flight
	// early holds exits that arrived while their start was in flight (a
	// container that dies at once): start applies them once it has
	// recorded the run.
	early  map[string]monitor.Status
	health map[string]context.CancelFunc
	// rootfsPending holds the rootfs snapshots of creates that answered
	// before the snapshot's commit ended (see Create).
	rootfsPending map[string]*pendingRootfs
	cancel        context.CancelFunc
	// hostCaps is the daemon's bounding set, read once: what --privileged
	// can grant (the monitor, which starts containers, has the same).
	hostCaps []string
	seccomp  specgen.SeccompCache
}

// New opens the daemon's state, connects to the monitor (starting it with
// startMonitor if it is not running) and repairs what a crash left.
func New(ctx context.Context, cfg Config, images Images, networks Networks, startMonitor func() error, log *slog.Logger) (*Daemon, error) {
	// 0711 down to each container's rootfs mount point: a container's
	// init runs as the container's root (its own host id with a user
	// namespace) and must traverse to its rootfs, but list nothing.
	for _, dir := range []string{cfg.Root, filepath.Join(cfg.Root, "containers"), filepath.Join(cfg.Root, "volumes")} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("data root: %w", err)
		}
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, fmt.Errorf("data root: %w", err)
		}
	}
	// Each container's directory is a tree of its own: ext4 spreads such
	// trees over its block groups (see topdir).
	for _, dir := range []string{filepath.Join(cfg.Root, "containers"), filepath.Join(cfg.Root, "volumes")} {
		if err := topdir.Mark(dir); err != nil {
			log.Warn("data root", "err", err)
		}
	}
	st, err := store.Open(filepath.Join(cfg.Root, "state.db"))
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, store: st, mon: &monitor.Client{Socket: cfg.MonitorSocket}, images: images, networks: networks,
		log: log, events: newEventBus(), waiters: map[string][]*waiter{}, execs: map[string]*execRecord{},
		timers: map[string]*time.Timer{}, starting: map[string]bool{}, early: map[string]monitor.Status{}, health: map[string]context.CancelFunc{},
		rootfsPending: map[string]*pendingRootfs{}}
	if cur, err := caps.Current(); err == nil {
		d.hostCaps = cur.Bounding.Names()
	}
	if err := d.connectMonitor(ctx, startMonitor); err != nil {
		st.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	exits, err := d.mon.Subscribe(lctx)
	if err != nil {
		cancel()
		st.Close()
		return nil, err
	}
	if err := d.repair(ctx, true); err != nil {
		cancel()
		st.Close()
		return nil, fmt.Errorf("repair state: %w", err)
	}
	if err := d.sweepOrphans(ctx); err != nil {
		cancel()
		st.Close()
		return nil, fmt.Errorf("repair state: %w", err)
	}
	go d.exitLoop(lctx, exits)
	return d, nil
}

func (d *Daemon) connectMonitor(ctx context.Context, startMonitor func() error) error {
	if _, err := d.mon.Call(ctx, &monitor.Request{Op: monitor.OpList}); err == nil {
		return nil
	}
	if startMonitor == nil {
		return fmt.Errorf("monitor at %s is not running", d.cfg.MonitorSocket)
	}
	if err := startMonitor(); err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err = d.mon.Call(ctx, &monitor.Request{Op: monitor.OpList}); err == nil {
			return nil
		}
	}
	return fmt.Errorf("monitor did not come up: %w", err)
}

// Close stops the daemon's loops and closes the store. Containers keep
// running under the monitor.
func (d *Daemon) Close() error {
	d.cancel()
	d.mu.Lock()
	for _, t := range d.timers {
		t.Stop()
	}
	d.mu.Unlock()
	d.mon.Close()
	// The containers' parent cgroup stays while the daemon runs
	// (cgroups.EngineParent); running containers keep it after.
	if err := cgroups.RemoveEmpty(cgroups.DefaultRoot, cgroups.EngineParent); err != nil {
		d.log.Warn("remove the containers' parent cgroup", "err", err)
	}
	return d.store.Close()
}

func (d *Daemon) containerDir(id string) string { return filepath.Join(d.cfg.Root, "containers", id) }
func (d *Daemon) rootfsDir(id string) string    { return filepath.Join(d.containerDir(id), "rootfs") }
func (d *Daemon) logPath(id string) string {
	return filepath.Join(d.containerDir(id), id+"-json.log")
}

func (d *Daemon) logOpts(c *store.Container) (int64, int) {
	size, files := d.cfg.LogMaxSize, d.cfg.LogMaxFiles
	if v, ok := c.HostConfig.LogConfig.Config["max-size"]; ok {
		if n, err := parseSize(v); err == nil {
			size = n
		}
	}
	if v, ok := c.HostConfig.LogConfig.Config["max-file"]; ok {
		fmt.Sscanf(v, "%d", &files)
	}
	if files < 1 {
		files = 1
	}
	return size, files
}

func (d *Daemon) specDefaults() *specgen.Defaults {
	return &specgen.Defaults{PidsLimit: d.cfg.PidsLimit, InitPath: d.cfg.InitPath, VolumesDir: filepath.Join(d.cfg.Root, "volumes"),
		HostCaps: d.hostCaps, Seccomp: &d.seccomp}
}

// nopCloser hides Close from a writer.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

var errStopped = errors.New("stopped")
