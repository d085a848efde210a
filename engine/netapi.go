package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/estiba/estiba/engine/api"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/engine/store"
)

// NetworkAdmin is what the network endpoints need from the network layer
// besides Networks: user-defined networks and live attachment.
type NetworkAdmin interface {
	NetworkList(ctx context.Context) ([]types.NetworkResource, error)
	NetworkInspect(ctx context.Context, ref string) (*types.NetworkResource, error)
	NetworkCreate(ctx context.Context, req *types.NetworkCreateRequest) (*types.NetworkCreateResponse, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkPrune(ctx context.Context) ([]string, error)
	// Connect attaches a running container (its init is pid).
	Connect(ctx context.Context, id, name string, pid int, network string, cfg *types.EndpointSettings) error
	Disconnect(ctx context.Context, id, network string) error
}

// netAPI resolves container references for the network layer.
type netAPI struct {
	NetworkAdmin
	d *Daemon
}

// NetworkAPI is the network endpoints' backend, or nil when the network
// layer offers no administration.
func (d *Daemon) NetworkAPI() api.Networks {
	na, ok := d.networks.(NetworkAdmin)
	if !ok {
		return nil
	}
	return netAPI{NetworkAdmin: na, d: d}
}

// NetworkConnect attaches a running container at once; a created or
// stopped one joins at its next start. Either way the network is recorded
// with the container and joined again at every start (restart policies,
// restart, start after stop) until disconnected, as with Docker.
func (n netAPI) NetworkConnect(ctx context.Context, ref string, req *types.NetworkConnectRequest) error {
	c, err := n.d.get(req.Container)
	if err != nil {
		return err
	}
	if mode := c.HostConfig.NetworkMode; mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		return fmt.Errorf("container %s has network mode %q and cannot be connected to a network: %w", c.Name, mode, errdefs.ErrInvalid)
	}
	nw, err := n.NetworkInspect(ctx, ref)
	if err != nil {
		return err
	}
	running := c.State.Status == store.StatusRunning && c.State.Pid != 0
	primary := n.d.networkOf(c) == nw.Name || n.d.networkOf(c) == nw.ID
	if _, ok := c.Connected[nw.Name]; ok || (primary && !running) {
		return fmt.Errorf("container %s is already connected to network %s: %w", c.Name, nw.Name, errdefs.ErrConflict)
	}
	if running {
		// The network layer refuses a network the container is on.
		if err := n.Connect(ctx, c.ID, strings.TrimPrefix(c.Name, "/"), c.State.Pid, nw.Name, req.EndpointConfig); err != nil {
			return err
		}
	}
	if primary {
		return nil // back on the network of --network, joined at every start anyway
	}
	_, err = n.d.store.Update(c.ID, func(c *store.Container) error {
		if c.Connected == nil {
			c.Connected = map[string]*types.EndpointSettings{}
		}
		c.Connected[nw.Name] = req.EndpointConfig
		return nil
	})
	if err != nil && running {
		n.Disconnect(ctx, c.ID, nw.Name)
	}
	return err
}

// NetworkDisconnect detaches a running container and forgets the network
// for its next starts.
func (n netAPI) NetworkDisconnect(ctx context.Context, ref string, req *types.NetworkDisconnectRequest) error {
	c, err := n.d.get(req.Container)
	if err != nil {
		if req.Force && errors.Is(err, errdefs.ErrNotFound) {
			// Force: drop the endpoint of a container the engine forgot.
			return n.Disconnect(ctx, req.Container, ref)
		}
		return err
	}
	name := ref
	if nw, err := n.NetworkInspect(ctx, ref); err == nil {
		name = nw.Name
	}
	_, recorded := c.Connected[name]
	primary := !recorded && n.d.networkOf(c) == name
	if c.State.Status == store.StatusRunning || c.State.Status == store.StatusPaused {
		if err := n.Disconnect(ctx, c.ID, ref); err != nil && !(recorded && errors.Is(err, errdefs.ErrNotFound)) {
			return err
		}
	} else if !recorded && !primary {
		return fmt.Errorf("container %s is not connected to network %s: %w", c.Name, ref, errdefs.ErrNotFound)
	}
	if !recorded && !primary {
		return nil
	}
	_, err = n.d.store.Update(c.ID, func(c *store.Container) error {
		delete(c.Connected, name)
		if primary {
			c.PrimaryDisconnected = true
		}
		return nil
	})
	return err
}

// hasNetworks reports whether a start attaches the container to any
// network (its own or connected ones).
func (d *Daemon) hasNetworks(c *store.Container) bool {
	if d.networkOf(c) != "" {
		return true
	}
	_, ok := d.networks.(NetworkAdmin)
	return ok && len(c.Connected) > 0
}

// rejoin attaches a starting container (its init is pid, held) to the
// networks it was connected to, in name order (eth1, eth2… after the
// network of --network).
func (d *Daemon) rejoin(ctx context.Context, c *store.Container, pid int) error {
	if len(c.Connected) == 0 {
		return nil
	}
	na, ok := d.networks.(NetworkAdmin)
	if !ok {
		return nil
	}
	names := make([]string, 0, len(c.Connected))
	for name := range c.Connected {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := na.Connect(ctx, c.ID, strings.TrimPrefix(c.Name, "/"), pid, name, c.Connected[name]); err != nil {
			return fmt.Errorf("network %s of %s: %w", name, c.Name, err)
		}
	}
	return nil
}

// NetworkReconciler is implemented by a network layer that keeps state
// across daemon restarts.
type NetworkReconciler interface {
	// Reconcile keeps the endpoints of the running containers and removes
	// every other endpoint and stray rule or link.
	Reconcile(ctx context.Context, running []string) error
}

// ReconcileNetworks is called once at daemon start: endpoints of
// containers that stopped or vanished while the daemon was down go away,
// so a restart leaves no duplicate or stale rule.
func (d *Daemon) ReconcileNetworks(ctx context.Context) error {
	r, ok := d.networks.(NetworkReconciler)
	if !ok {
		return nil
	}
	list, err := d.store.List()
	if err != nil {
		return err
	}
	var running []string
	for _, c := range list {
		if c.State.Pid != 0 && (c.State.Status == store.StatusRunning || c.State.Status == store.StatusPaused) {
			running = append(running, c.ID)
		}
	}
	return r.Reconcile(ctx, running)
}

// BandwidthSetter is implemented by a network layer that limits rates.
type BandwidthSetter interface {
	// CheckBandwidth validates limits without applying them.
	CheckBandwidth(b types.Bandwidth) error
	// SetBandwidth applies limits to every endpoint of the container,
	// live (the links stay up).
	SetBandwidth(ctx context.Context, id string, b types.Bandwidth) error
}

func (d *Daemon) checkBandwidth(hc *types.HostConfig) error {
	if hc.Bandwidth.IsZero() {
		return nil
	}
	bs, ok := d.networks.(BandwidthSetter)
	if !ok {
		return fmt.Errorf("bandwidth limits need the network layer: %w", errdefs.ErrNotImplemented)
	}
	switch mode := hc.NetworkMode; {
	case mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:"):
		return fmt.Errorf("bandwidth limits need a network of the container's own (network mode %q): %w", mode, errdefs.ErrInvalid)
	}
	return bs.CheckBandwidth(hc.Bandwidth)
}

func (d *Daemon) applyBandwidth(ctx context.Context, id string, b types.Bandwidth) error {
	if b.IsZero() {
		return nil
	}
	bs, ok := d.networks.(BandwidthSetter)
	if !ok {
		return fmt.Errorf("bandwidth limits need the network layer: %w", errdefs.ErrNotImplemented)
	}
	return bs.SetBandwidth(ctx, id, b)
}

// Update changes a container's bandwidth limits, live when it runs, and
// records them for its next start. Docker's other update fields (cgroup
// resources, restart policy) are refused: not built yet.
func (d *Daemon) Update(ctx context.Context, ref string, req *types.ContainerUpdateRequest) (*types.ContainerUpdateResponse, error) {
	if !reflect.ValueOf(req.Resources).IsZero() || req.RestartPolicy != nil && req.RestartPolicy.Name != "" {
		return nil, fmt.Errorf("update of resources or restart policy is not supported (only --egress-rate/--ingress-rate): %w", errdefs.ErrNotImplemented)
	}
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	hc := c.HostConfig
	hc.Bandwidth = req.Bandwidth
	if err := d.checkBandwidth(&hc); err != nil {
		return nil, err
	}
	if _, ok := d.networks.(BandwidthSetter); !ok {
		return nil, fmt.Errorf("bandwidth limits need the network layer: %w", errdefs.ErrNotImplemented)
	}
	if c.State.Status == store.StatusRunning || c.State.Status == store.StatusPaused {
		if c.State.Network == nil {
			return nil, fmt.Errorf("container %s runs without a network of its own: %w", c.Name, errdefs.ErrConflict)
		}
		// Not applyBandwidth: zero limits here lift the old ones.
		if err := d.networks.(BandwidthSetter).SetBandwidth(ctx, c.ID, req.Bandwidth); err != nil {
			return nil, err
		}
	}
	if _, err := d.store.Update(c.ID, func(c *store.Container) error {
		c.HostConfig.Bandwidth = req.Bandwidth
		return nil
	}); err != nil {
		return nil, err
	}
	return &types.ContainerUpdateResponse{Warnings: []string{}}, nil
}

// NetworkStats is implemented by a network layer that counts traffic.
type NetworkStats interface {
	// NetStats gives the container's counters by interface name (eth0…)
	// in Docker's shape: rx_bytes, tx_bytes, rx_packets, tx_packets…
	NetStats(id string) map[string]any
}

func (d *Daemon) netStats(id string) map[string]any {
	ns, ok := d.networks.(NetworkStats)
	if !ok {
		return nil
	}
	return ns.NetStats(id)
}

// ContainerNetworks is implemented by a network layer that can list a
// container's endpoints (those added by connect included).
type ContainerNetworks interface {
	// ContainerNetworks maps network names to Docker's endpoint settings
	// (NetworkID, EndpointID, IPAddress, Gateway, MacAddress, …).
	ContainerNetworks(id string) map[string]map[string]any
}

// addNetworks completes inspect's NetworkSettings.Networks with every
// endpoint of the container.
func (d *Daemon) addNetworks(nets map[string]any, id string) {
	cn, ok := d.networks.(ContainerNetworks)
	if !ok {
		return
	}
	for name, ep := range cn.ContainerNetworks(id) {
		nets[name] = ep
	}
}
