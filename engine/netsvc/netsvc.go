// Package netsvc adapts the network layer (network.Manager) to the
// engine's Networks interface. The manager is opened on first use, so a
// daemon whose containers never ask for a network touches no bridge,
// veth or nftables state of the host.
package netsvc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/estiba/estiba/engine"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/network"
)

// Networks opens the manager with Config on first use.
type Networks struct {
	Config network.Config

	mu  sync.Mutex
	m   *network.Manager
	err error
}

var _ engine.Networks = (*Networks)(nil)

func (n *Networks) manager(ctx context.Context) (*network.Manager, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil && n.err == nil {
		n.m, n.err = network.New(ctx, n.Config)
	}
	return n.m, n.err
}

// Close releases the manager (the host's networks stay for containers
// that still run).
func (n *Networks) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		return nil
	}
	return n.m.Close()
}

// Setup attaches the container's namespace (through its init's pid).
func (n *Networks) Setup(ctx context.Context, id, name string, pid int, net string, ports map[string][]types.PortBinding) (*engine.NetInfo, error) {
	m, err := n.manager(ctx)
	if err != nil {
		return nil, fmt.Errorf("network layer: %w", err)
	}
	maps, err := portMappings(ports)
	if err != nil {
		return nil, err
	}
	ep, err := m.Attach(ctx, id, fmt.Sprintf("/proc/%d/ns/net", pid), net, network.AttachOptions{Name: name, Ports: maps})
	if err != nil {
		if errors.Is(err, network.ErrNotFound) {
			return nil, fmt.Errorf("network %s not found: %w", net, errdefs.ErrNotFound)
		}
		return nil, err
	}
	info := &engine.NetInfo{Network: net, IP: ep.IP.String(), Gateway: ep.Gateway.String(), Ports: map[string][]types.PortBinding{}}
	for _, p := range ep.Ports {
		key := strconv.Itoa(int(p.ContainerPort)) + "/" + p.Proto
		hp := strconv.Itoa(int(p.HostPort))
		if p.HostIP.IsValid() {
			info.Ports[key] = append(info.Ports[key], types.PortBinding{HostIP: p.HostIP.String(), HostPort: hp})
			continue
		}
		// Docker lists a port published on every address once per family.
		info.Ports[key] = append(info.Ports[key], types.PortBinding{HostIP: "0.0.0.0", HostPort: hp})
		if ep.IP6.IsValid() {
			info.Ports[key] = append(info.Ports[key], types.PortBinding{HostIP: "::", HostPort: hp})
		}
	}
	if f, err := m.ContainerFiles(id, name); err == nil {
		info.Hosts, info.ResolvConf = f.Hosts, f.ResolvConf
	}
	return info, nil
}

// Teardown detaches every endpoint of the container.
func (n *Networks) Teardown(ctx context.Context, id string) error {
	m, err := n.manager(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ep := range m.ContainerEndpoints(id) {
		errs = append(errs, m.Detach(ctx, id, ep.Network))
	}
	return errors.Join(errs...)
}

// portMappings reads -p bindings: "80/tcp" → [{HostIp, HostPort}].
func portMappings(ports map[string][]types.PortBinding) ([]network.PortMapping, error) {
	var out []network.PortMapping
	for key, bs := range ports {
		port, proto, _ := strings.Cut(key, "/")
		if proto == "" {
			proto = "tcp"
		}
		cp, err := strconv.ParseUint(port, 10, 16)
		if err != nil || (proto != "tcp" && proto != "udp") {
			return nil, fmt.Errorf("invalid port %q: %w", key, errdefs.ErrInvalid)
		}
		for _, b := range bs {
			pm := network.PortMapping{ContainerPort: uint16(cp), Proto: proto}
			if b.HostPort != "" {
				hp, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					return nil, fmt.Errorf("invalid host port %q (ranges are not supported): %w", b.HostPort, errdefs.ErrInvalid)
				}
				pm.HostPort = uint16(hp)
			}
			if b.HostIP != "" {
				ip, err := netip.ParseAddr(b.HostIP)
				if err != nil {
					return nil, fmt.Errorf("invalid host IP %q: %w", b.HostIP, errdefs.ErrInvalid)
				}
				pm.HostIP = ip
			}
			out = append(out, pm)
		}
	}
	return out, nil
}
