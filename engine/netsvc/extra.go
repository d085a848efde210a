package netsvc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/estiba/estiba/engine"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/network"
)

var _ engine.NetworkAdmin = (*Networks)(nil)

// classify gives the network layer's errors the engine's classes, which
// the API turns into statuses; the message stays the layer's own.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, network.ErrNotFound):
		// Docker's wording ("network x not found"): the API drops a
		// trailing class name from messages.
		return classed{err, errdefs.ErrNotFound, strings.TrimSuffix(err.Error(), ": "+network.ErrNotFound.Error()) + " not found"}
	case errors.Is(err, network.ErrConflict), errors.Is(err, network.ErrInUse):
		return classed{err, errdefs.ErrConflict, err.Error()}
	case errors.Is(err, network.ErrInvalid):
		return classed{err, errdefs.ErrInvalid, err.Error()}
	}
	return err
}

type classed struct {
	err, class error
	msg        string
}

func (c classed) Error() string   { return c.msg }
func (c classed) Unwrap() []error { return []error{c.err, c.class} }

func (n *Networks) open(ctx context.Context) (*network.Manager, error) {
	m, err := n.manager(ctx)
	if err != nil {
		return nil, fmt.Errorf("network layer: %w", err)
	}
	return m, nil
}

// NetworkList lists every network in Docker's shape.
func (n *Networks) NetworkList(ctx context.Context) ([]types.NetworkResource, error) {
	m, err := n.open(ctx)
	if err != nil {
		return nil, err
	}
	var out []types.NetworkResource
	for _, nw := range m.Networks() {
		out = append(out, resource(nw, m.Endpoints(nw.ID)))
	}
	return out, nil
}

// NetworkInspect is one network with its endpoints.
func (n *Networks) NetworkInspect(ctx context.Context, ref string) (*types.NetworkResource, error) {
	m, err := n.open(ctx)
	if err != nil {
		return nil, err
	}
	nw, err := m.Inspect(ref)
	if err != nil {
		return nil, classify(err)
	}
	r := resource(nw, m.Endpoints(nw.ID))
	return &r, nil
}

func resource(nw network.Network, eps []network.Endpoint) types.NetworkResource {
	r := types.NetworkResource{
		// The network layer records no creation time: the zero time says
		// "unknown" in a form the docker CLI parses.
		Created: time.Time{}.Format(time.RFC3339Nano),
		Name:    nw.Name, ID: nw.ID, Scope: "local", Driver: "bridge", EnableIPv6: nw.Subnet6.IsValid(),
		Internal: nw.Internal, Attachable: true, Labels: nw.Labels, Options: map[string]string{},
		IPAM:       types.IPAM{Driver: "default", Options: map[string]string{}},
		Containers: map[string]types.EndpointResource{},
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	if nw.Subnet.IsValid() {
		r.IPAM.Config = append(r.IPAM.Config, types.IPAMConfig{Subnet: nw.Subnet.String(), Gateway: nw.Gateway.String()})
	}
	if nw.Subnet6.IsValid() {
		r.IPAM.Config = append(r.IPAM.Config, types.IPAMConfig{Subnet: nw.Subnet6.String(), Gateway: nw.Gateway6.String()})
	}
	for _, ep := range eps {
		er := types.EndpointResource{Name: ep.Name, EndpointID: ep.HostVeth, MacAddress: ep.MAC}
		if ep.IP.IsValid() {
			er.IPv4Address = netip.PrefixFrom(ep.IP, nw.Subnet.Bits()).String()
		}
		if ep.IP6.IsValid() {
			er.IPv6Address = netip.PrefixFrom(ep.IP6, nw.Subnet6.Bits()).String()
		}
		r.Containers[ep.ContainerID] = er
	}
	return r
}

// NetworkCreate creates a user-defined bridge network.
func (n *Networks) NetworkCreate(ctx context.Context, req *types.NetworkCreateRequest) (*types.NetworkCreateResponse, error) {
	cfg, err := networkConfig(req)
	if err != nil {
		return nil, err
	}
	m, err := n.open(ctx)
	if err != nil {
		return nil, err
	}
	nw, err := m.CreateNetwork(ctx, cfg)
	if err != nil {
		return nil, classify(err)
	}
	return &types.NetworkCreateResponse{ID: nw.ID}, nil
}

// networkConfig refuses what the network layer does not build rather than
// ignore it.
func networkConfig(req *types.NetworkCreateRequest) (network.NetworkConfig, error) {
	cfg := network.NetworkConfig{Name: req.Name, Internal: req.Internal, Labels: req.Labels}
	switch {
	case req.Name == "":
		return cfg, fmt.Errorf("network name is required: %w", errdefs.ErrInvalid)
	case req.Driver != "" && req.Driver != "bridge":
		return cfg, fmt.Errorf("network driver %q is not supported (only bridge): %w", req.Driver, errdefs.ErrInvalid)
	case req.Scope != "" && req.Scope != "local":
		return cfg, fmt.Errorf("network scope %q is not supported (only local): %w", req.Scope, errdefs.ErrInvalid)
	case req.Ingress:
		return cfg, fmt.Errorf("ingress networks are not supported: %w", errdefs.ErrInvalid)
	case len(req.Options) > 0:
		return cfg, fmt.Errorf("driver options are not supported: %w", errdefs.ErrInvalid)
	}
	ipv6 := req.EnableIPv6 != nil && *req.EnableIPv6
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return cfg, fmt.Errorf("IPAM driver %q is not supported: %w", req.IPAM.Driver, errdefs.ErrInvalid)
		}
		for _, c := range req.IPAM.Config {
			if err := addSubnet(&cfg, c); err != nil {
				return cfg, err
			}
		}
	}
	if cfg.Subnet6.IsValid() && !ipv6 {
		return cfg, fmt.Errorf("an IPv6 subnet needs EnableIPv6: %w", errdefs.ErrInvalid)
	}
	if ipv6 && !cfg.Subnet6.IsValid() {
		return cfg, fmt.Errorf("EnableIPv6 needs an IPv6 subnet (--subnet): %w", errdefs.ErrInvalid)
	}
	return cfg, nil
}

func addSubnet(cfg *network.NetworkConfig, c types.IPAMConfig) error {
	if c.IPRange != "" {
		return fmt.Errorf("ip-range is not supported: %w", errdefs.ErrInvalid)
	}
	p, err := netip.ParsePrefix(c.Subnet)
	if err != nil {
		return fmt.Errorf("subnet %q: %v: %w", c.Subnet, err, errdefs.ErrInvalid)
	}
	var gw netip.Addr
	if c.Gateway != "" {
		if gw, err = netip.ParseAddr(c.Gateway); err != nil {
			return fmt.Errorf("gateway %q: %v: %w", c.Gateway, err, errdefs.ErrInvalid)
		}
		if !p.Contains(gw) {
			return fmt.Errorf("gateway %s is not in subnet %s: %w", gw, p, errdefs.ErrInvalid)
		}
	}
	switch {
	case p.Addr().Is4() && !cfg.Subnet.IsValid():
		cfg.Subnet, cfg.Gateway = p, gw
	case p.Addr().Is6() && !cfg.Subnet6.IsValid():
		cfg.Subnet6, cfg.Gateway6 = p, gw
	default:
		return fmt.Errorf("only one IPv4 and one IPv6 subnet per network: %w", errdefs.ErrInvalid)
	}
	return nil
}

// NetworkRemove removes a network no container uses.
func (n *Networks) NetworkRemove(ctx context.Context, ref string) error {
	m, err := n.open(ctx)
	if err != nil {
		return err
	}
	nw, err := m.Inspect(ref)
	if err != nil {
		return classify(err)
	}
	if nw.Name == network.DefaultNetwork {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", nw.Name, errdefs.ErrConflict)
	}
	return classify(m.RemoveNetwork(ctx, nw.ID))
}

// NetworkPrune removes unused user-defined networks.
func (n *Networks) NetworkPrune(ctx context.Context) ([]string, error) {
	m, err := n.open(ctx)
	if err != nil {
		return nil, err
	}
	names, err := m.PruneNetworks(ctx)
	return names, classify(err)
}

// Connect attaches a running container to one more network.
func (n *Networks) Connect(ctx context.Context, id, name string, pid int, net string, cfg *types.EndpointSettings) error {
	m, err := n.open(ctx)
	if err != nil {
		return err
	}
	opts := network.AttachOptions{Name: name}
	if cfg != nil {
		opts.Aliases, opts.MAC = cfg.Aliases, cfg.MacAddress
		if c := cfg.IPAMConfig; c != nil {
			if opts.IP, err = optAddr(c.IPv4Address); err != nil {
				return err
			}
			if opts.IP6, err = optAddr(c.IPv6Address); err != nil {
				return err
			}
		}
	}
	_, err = m.Attach(ctx, id, fmt.Sprintf("/proc/%d/ns/net", pid), net, opts)
	return classify(err)
}

func optAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("address %q: %v: %w", s, err, errdefs.ErrInvalid)
	}
	return a, nil
}

// Disconnect detaches the container from one network.
func (n *Networks) Disconnect(ctx context.Context, id, net string) error {
	m, err := n.open(ctx)
	if err != nil {
		return err
	}
	return classify(m.Detach(ctx, id, net))
}

// Reconcile keeps every endpoint of the running containers (the network
// of --network and those added by connect) and drops the rest. A daemon
// whose network layer was never used does not open it here.
func (n *Networks) Reconcile(ctx context.Context, running []string) error {
	if fs, ok := n.Config.Store.(network.FileStore); ok {
		if _, err := os.Stat(fs.Dir); errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	m, err := n.open(ctx)
	if err != nil {
		return err
	}
	var desired []network.DesiredEndpoint
	for _, id := range running {
		for _, ep := range m.ContainerEndpoints(id) {
			desired = append(desired, network.DesiredEndpoint{ContainerID: id, Network: ep.Network})
		}
	}
	lost, err := m.Reconcile(ctx, desired)
	if err != nil {
		return fmt.Errorf("reconcile networks: %w", err)
	}
	if len(lost) > 0 {
		// A running container whose veth vanished: re-attaching it needs
		// its namespace, which the engine does not track after start.
		return fmt.Errorf("reconcile networks: %d endpoints of running containers were lost (first: %s on %s): %w",
			len(lost), lost[0].ContainerID, lost[0].Network, errdefs.ErrNotImplemented)
	}
	return nil
}

// parseBandwidth reads the API extension's strings.
func parseBandwidth(b types.Bandwidth) (network.Bandwidth, error) {
	var bw network.Bandwidth
	for _, f := range []struct {
		s    string
		dst  *uint64
		rate bool
	}{
		{b.EstibaEgressRate, &bw.EgressRate, true}, {b.EstibaIngressRate, &bw.IngressRate, true},
		{b.EstibaEgressBurst, &bw.EgressBurst, false}, {b.EstibaIngressBurst, &bw.IngressBurst, false},
	} {
		if f.s == "" {
			continue
		}
		var err error
		if f.rate {
			*f.dst, err = network.ParseRate(f.s)
		} else {
			*f.dst, err = network.ParseSize(f.s)
		}
		if err != nil {
			return bw, classify(err)
		}
	}
	if bw.EgressBurst > 0 && bw.EgressRate == 0 || bw.IngressBurst > 0 && bw.IngressRate == 0 {
		return bw, fmt.Errorf("a burst needs the rate of its direction: %w", errdefs.ErrInvalid)
	}
	return bw, nil
}

// CheckBandwidth validates limits.
func (n *Networks) CheckBandwidth(b types.Bandwidth) error {
	_, err := parseBandwidth(b)
	return err
}

// SetBandwidth applies limits to every endpoint of the container.
func (n *Networks) SetBandwidth(ctx context.Context, id string, b types.Bandwidth) error {
	bw, err := parseBandwidth(b)
	if err != nil {
		return err
	}
	m, err := n.open(ctx)
	if err != nil {
		return err
	}
	eps := m.ContainerEndpoints(id)
	if len(eps) == 0 {
		return fmt.Errorf("container %s has no network endpoint: %w", id, errdefs.ErrConflict)
	}
	for _, ep := range eps {
		if err := m.SetBandwidth(ctx, id, ep.Network, bw); err != nil {
			return classify(err)
		}
	}
	return nil
}

// netStats is one interface's counters as Docker's stats show them.
type netStats struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDropped uint64 `json:"tx_dropped"`
}

// NetStats reads the counters of the container's endpoints; a daemon that
// never opened the network layer has none (nil, so stats omit the key).
func (n *Networks) NetStats(id string) map[string]any {
	n.mu.Lock()
	m := n.m
	n.mu.Unlock()
	if m == nil {
		return nil
	}
	out := map[string]any{}
	for _, ep := range m.ContainerEndpoints(id) {
		s, err := m.Stats(id, ep.Network)
		if err != nil {
			continue // the endpoint went away meanwhile
		}
		out[ep.Interface] = netStats{RxBytes: s.RxBytes, RxPackets: s.RxPackets, RxDropped: s.RxDropped,
			TxBytes: s.TxBytes, TxPackets: s.TxPackets, TxDropped: s.TxDropped}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ContainerNetworks lists the container's endpoints by network name.
func (n *Networks) ContainerNetworks(id string) map[string]map[string]any {
	n.mu.Lock()
	m := n.m
	n.mu.Unlock()
	if m == nil {
		return nil
	}
	out := map[string]map[string]any{}
	for _, ep := range m.ContainerEndpoints(id) {
		nw, err := m.Inspect(ep.Network)
		if err != nil {
			continue // removed meanwhile
		}
		s := map[string]any{"NetworkID": nw.ID, "EndpointID": ep.HostVeth, "IPAddress": ep.IP.String(),
			"IPPrefixLen": nw.Subnet.Bits(), "Gateway": ep.Gateway.String(), "MacAddress": ep.MAC, "Aliases": ep.Aliases,
			"GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": ""}
		if ep.IP6.IsValid() {
			s["GlobalIPv6Address"], s["GlobalIPv6PrefixLen"], s["IPv6Gateway"] = ep.IP6.String(), nw.Subnet6.Bits(), ep.Gateway6.String()
		}
		out[nw.Name] = s
	}
	return out
}
