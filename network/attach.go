package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Attach connects the namespace at netnsPath to a network: allocates the
// addresses, creates the veth with its peer inside the namespace, sets up
// addresses and routes on both sides, publishes ports and applies limits.
// The endpoint record is stored before any kernel object exists, so a crash
// mid-way leaves a record Reconcile can clean up, never an address that a
// restarted daemon would hand out twice. On error nothing remains.
func (m *Manager) Attach(ctx context.Context, containerID, netnsPath, network string, opts AttachOptions) (*Endpoint, error) {
	ep, err := m.reserve(containerID, netnsPath, network, opts)
	if err != nil {
		return nil, err
	}
	if err := m.plumb(ep); err != nil {
		m.forget(ep)
		m.teardown(ep)
		m.release(ep)
		return nil, fmt.Errorf("attach %s to %s: %w", containerID, network, err)
	}
	c := *ep
	return &c, nil
}

func (m *Manager) plumb(ep *Endpoint) error {
	link, err := addVeth(m.nl, ep)
	if err != nil {
		return err
	}
	n, err := m.Inspect(ep.Network)
	if err != nil {
		return err
	}
	ns, h, closeNS, err := openNS(ep.NetnsPath)
	if err != nil {
		return err
	}
	defer closeNS()
	peer, err := setupContainerSide(h, ep, n)
	if err != nil {
		return err
	}
	wait, err := watchActive(ns, peer.Attrs().Index)
	if err != nil {
		return err
	}
	// The host side, up last, is activated synchronously; the container
	// side asynchronously (see watchActive).
	err = setupHostSide(m.nl, link, ep)
	wait()
	if err != nil {
		return err
	}
	if err := m.fw.setPorts(ep, true); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		// Our table or its maps were removed from outside (nft flush
		// ruleset): rebuild it from the records, this endpoint's included.
		if err := m.syncFirewall(); err != nil {
			return err
		}
	}
	if err := m.rl.start(ep); err != nil {
		return err
	}
	if ep.Bandwidth == (Bandwidth{}) {
		return nil // a new veth has no qdiscs to remove
	}
	return m.tc.apply(ep.HostVeth, ifbName(ep), ep.Bandwidth)
}

// watchActive subscribes to link events in the container's namespace and
// returns a function that waits (at most 2 s) until the container side of
// the veth has been activated. The side brought up first (the container's)
// gets its carrier only when the host side comes up, and the kernel
// handles that asynchronously (linkwatch): until then the device's transmit
// queue holds the noop qdisc, which drops every packet, so on a loaded host
// a container's first ARP request vanished and its first packet waited for
// the 1 s ARP retry. Neither the qdisc dump nor a polled operstate shows
// the moment; the RTM_NEWLINK linkwatch sends right after activating the
// device, the first to report operstate UP, does.
func watchActive(ns netns.NsHandle, index int) (wait func(), err error) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	err = netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{Namespace: &ns})
	if err != nil {
		return nil, fmt.Errorf("watch links: %w", err)
	}
	return func() {
		defer func() {
			close(done)
			go func() { // the subscriber closes updates once it sees done
				for range updates {
				}
			}()
		}()
		timeout := time.After(2 * time.Second)
		for {
			select {
			case u, ok := <-updates:
				if !ok {
					return
				}
				if int(u.Index) == index && u.Attrs().OperState == netlink.OperUp {
					return
				}
			case <-timeout:
				return
			}
		}
	}, nil
}

func ifbName(ep *Endpoint) string {
	return ifbPrefix + ep.HostVeth[len(vethPrefix):]
}

// reserve validates the request, allocates addresses and stores the record.
func (m *Manager) reserve(containerID, netnsPath, network string, opts AttachOptions) (*Endpoint, error) {
	if containerID == "" || netnsPath == "" {
		return nil, fmt.Errorf("attach: container ID and netns path are required: %w", ErrInvalid)
	}
	if len(opts.Interface) > 15 {
		return nil, fmt.Errorf("interface name %q too long: %w", opts.Interface, ErrInvalid)
	}
	if err := validBandwidth(opts.Bandwidth); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.byName(network)
	if n == nil {
		return nil, fmt.Errorf("network %q: %w", network, ErrNotFound)
	}
	key := epKey(n.ID, containerID)
	if _, ok := m.eps[key]; ok {
		return nil, fmt.Errorf("container %s already on network %s: %w", containerID, n.Name, ErrConflict)
	}
	if err := m.checkPorts(n, opts.Ports); err != nil {
		return nil, err
	}
	if opts.Interface == "" {
		opts.Interface = m.freeInterface(containerID)
	}
	ep := &Endpoint{ContainerID: containerID, Network: n.ID, NetnsPath: netnsPath, Name: opts.Name,
		Aliases: opts.Aliases, Interface: opts.Interface, HostVeth: devName(vethPrefix, n.ID, containerID),
		Gateway: n.Gateway, Gateway6: n.Gateway6, MAC: opts.MAC, Ports: opts.Ports, Bandwidth: opts.Bandwidth}
	if err := m.allocate(n, ep, opts); err != nil {
		return nil, err
	}
	b, err := json.Marshal(ep)
	if err == nil {
		err = m.cfg.Store.Put("endpoint", key, b)
	}
	if err != nil {
		m.releaseLocked(ep)
		return nil, fmt.Errorf("store endpoint: %w", err)
	}
	m.eps[key] = ep
	return ep, nil
}

// freeInterface picks the lowest ethN the container does not use yet: eth0
// for its first network, eth1 for a network it connects to later.
// Caller holds mu.
func (m *Manager) freeInterface(containerID string) string {
	used := map[string]bool{}
	for _, e := range m.eps {
		if e.ContainerID == containerID {
			used[e.Interface] = true
		}
	}
	for i := 0; ; i++ {
		if name := fmt.Sprintf("eth%d", i); !used[name] {
			return name
		}
	}
}

// allocate takes static or next free addresses. Caller holds mu.
func (m *Manager) allocate(n *Network, ep *Endpoint, opts AttachOptions) error {
	pools := m.ipam[n.ID]
	if opts.IP.IsValid() {
		if err := pools[0].check(opts.IP); err != nil {
			return err
		}
		pools[0].take(opts.IP)
		ep.IP = opts.IP
	} else {
		ip, err := pools[0].allocate()
		if err != nil {
			return err
		}
		ep.IP = ip
	}
	if opts.IP6.IsValid() && pools[1] == nil {
		pools[0].release(ep.IP)
		return fmt.Errorf("network %s has no IPv6 subnet for %s: %w", n.Name, opts.IP6, ErrInvalid)
	}
	if pools[1] == nil {
		return nil
	}
	if opts.IP6.IsValid() {
		if err := pools[1].check(opts.IP6); err != nil {
			pools[0].release(ep.IP)
			return err
		}
		pools[1].take(opts.IP6)
		ep.IP6 = opts.IP6
		return nil
	}
	ip6, err := pools[1].allocate()
	if err != nil {
		pools[0].release(ep.IP)
		return err
	}
	ep.IP6 = ip6
	return nil
}

// checkPorts refuses ports of internal networks and ports already
// published by any endpoint (same host address or wildcard, same proto).
// Caller holds mu.
func (m *Manager) checkPorts(n *Network, ports []PortMapping) error {
	if len(ports) == 0 {
		return nil
	}
	if n.Internal {
		return fmt.Errorf("network %s is internal: ports cannot be published: %w", n.Name, ErrInvalid)
	}
	type key struct {
		proto string
		port  uint16
	}
	seen := map[key][]netip.Addr{}
	add := func(p PortMapping) error {
		k := key{p.Proto, p.HostPort}
		for _, h := range seen[k] {
			if !h.IsValid() || !p.HostIP.IsValid() || h == p.HostIP {
				return fmt.Errorf("port %d/%s already published: %w", p.HostPort, p.Proto, ErrConflict)
			}
		}
		seen[k] = append(seen[k], p.HostIP)
		return nil
	}
	for _, e := range m.eps {
		for _, p := range e.Ports {
			add(p)
		}
	}
	for _, p := range ports {
		if err := validPort(p); err != nil {
			return err
		}
		if p.HostIP.Is6() && p.HostIP.IsLoopback() && p.Proto == "udp" {
			return fmt.Errorf("port [::1]:%d/udp: UDP is not relayed to ::1 (publish on every address or an IPv4 one): %w", p.HostPort, ErrInvalid)
		}
		if p.HostIP.Is6() && !p.HostIP.IsLoopback() && !n.Subnet6.IsValid() {
			return fmt.Errorf("port %s:%d: network %s has no IPv6 subnet (create it with --ipv6 --subnet): %w",
				p.HostIP, p.HostPort, n.Name, ErrInvalid)
		}
		if err := add(p); err != nil {
			return err
		}
	}
	return nil
}

func validPort(p PortMapping) error {
	switch {
	case p.Proto != "tcp" && p.Proto != "udp":
		return fmt.Errorf("port protocol %q (tcp or udp): %w", p.Proto, ErrInvalid)
	case p.HostPort == 0 || p.ContainerPort == 0:
		return fmt.Errorf("port %d:%d: ports must be 1-65535: %w", p.HostPort, p.ContainerPort, ErrInvalid)
	case p.HostIP.Is4In6():
		return fmt.Errorf("host address %s: write IPv4 addresses as such: %w", p.HostIP, ErrInvalid)
	case p.HostIP.Zone() != "":
		return fmt.Errorf("host address %s: zones are not supported: %w", p.HostIP, ErrInvalid)
	}
	return nil
}

// hostsOverlap reports whether two host addresses of published ports
// share an address: no address means every address of both families, an
// unspecified one (0.0.0.0, ::) every address of its family.
func hostsOverlap(a, b netip.Addr) bool {
	switch {
	case !a.IsValid() || !b.IsValid():
		return true
	case a.Is4() != b.Is4():
		return false
	}
	return a == b || a.IsUnspecified() || b.IsUnspecified()
}

func (m *Manager) releaseLocked(ep *Endpoint) {
	pools, ok := m.ipam[ep.Network]
	if !ok {
		return
	}
	pools[0].release(ep.IP)
	if pools[1] != nil && ep.IP6.IsValid() {
		pools[1].release(ep.IP6)
	}
}

// forget drops the endpoint from the map the firewall is rebuilt from,
// before its elements are removed: a rebuild racing with the removal then
// cannot put them back. Its addresses stay taken until release.
func (m *Manager) forget(ep *Endpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.eps, epKey(ep.Network, ep.ContainerID))
}

// release frees the endpoint's addresses and deletes its record.
func (m *Manager) release(ep *Endpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := epKey(ep.Network, ep.ContainerID)
	if err := m.cfg.Store.Delete("endpoint", key); err != nil {
		return err
	}
	m.releaseLocked(ep)
	delete(m.eps, key)
	return nil
}

// teardown removes the kernel objects of an endpoint; each step tolerates
// objects already gone, so it also finishes a half-done attach or detach.
// Deleting the host veth deletes its peer and the routes through it.
func (m *Manager) teardown(ep *Endpoint) error {
	var errs []error
	m.rl.stop(ep)
	errs = append(errs, m.fw.setPorts(ep, false))
	errs = append(errs, delLink(m.nl, ifbName(ep)))
	errs = append(errs, delLink(m.nl, ep.HostVeth))
	return errors.Join(errs...)
}

// Detach disconnects a container from a network (name or ID).
func (m *Manager) Detach(ctx context.Context, containerID, network string) error {
	ep, err := m.endpoint(containerID, network)
	if err != nil {
		return err
	}
	m.forget(ep)
	// Whatever teardown leaves (an error midway) is a stray link or map
	// element: Reconcile and the next table rebuild remove those.
	terr := m.teardown(ep)
	if err := m.release(ep); err != nil {
		return err
	}
	if terr != nil {
		return fmt.Errorf("detach %s from %s: %w", containerID, network, terr)
	}
	return nil
}

func (m *Manager) endpoint(containerID, network string) (*Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.byName(network)
	if n == nil {
		return nil, fmt.Errorf("network %q: %w", network, ErrNotFound)
	}
	ep, ok := m.eps[epKey(n.ID, containerID)]
	if !ok {
		return nil, fmt.Errorf("container %s on network %s: %w", containerID, n.Name, ErrNotFound)
	}
	return ep, nil
}

// SetBandwidth changes an endpoint's limits live: the qdiscs are replaced
// in place, the link never goes down.
func (m *Manager) SetBandwidth(ctx context.Context, containerID, network string, bw Bandwidth) error {
	if err := validBandwidth(bw); err != nil {
		return err
	}
	ep, err := m.endpoint(containerID, network)
	if err != nil {
		return err
	}
	if err := m.tc.apply(ep.HostVeth, ifbName(ep), bw); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ep.Bandwidth = bw
	b, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	return m.cfg.Store.Put("endpoint", epKey(ep.Network, ep.ContainerID), b)
}

// Stats reads the endpoint's counters from its host veth (whose receive
// side is the container's transmit side).
func (m *Manager) Stats(containerID, network string) (Stats, error) {
	ep, err := m.endpoint(containerID, network)
	if err != nil {
		return Stats{}, err
	}
	l, err := m.nl.LinkByName(ep.HostVeth)
	if err != nil {
		return Stats{}, fmt.Errorf("stats %s: %w", ep.HostVeth, err)
	}
	s := l.Attrs().Statistics
	if s == nil {
		return Stats{}, fmt.Errorf("stats %s: kernel gave none", ep.HostVeth)
	}
	return Stats{RxBytes: s.TxBytes, TxBytes: s.RxBytes, RxPackets: s.TxPackets, TxPackets: s.RxPackets,
		RxDropped: s.TxDropped, TxDropped: s.RxDropped}, nil
}

// Reconcile is called once after a daemon restart with the endpoints the
// engine still has. Endpoints not desired, or whose veth vanished (its
// namespace died with the host's reboot or the container), are removed and
// returned: the engine re-attaches those it still wants. Links of ours that
// no record explains are deleted; the nftables table is rebuilt from the
// records, so every rule and element exists exactly once.
func (m *Manager) Reconcile(ctx context.Context, desired []DesiredEndpoint) ([]Endpoint, error) {
	want := map[string]bool{}
	m.mu.Lock()
	for _, d := range desired {
		if n := m.byName(d.Network); n != nil {
			want[epKey(n.ID, d.ContainerID)] = true
		}
	}
	var stale, keep []*Endpoint
	for k, e := range m.eps {
		if want[k] && m.linkExists(e.HostVeth) {
			keep = append(keep, e)
		} else {
			stale = append(stale, e)
		}
	}
	for _, e := range stale {
		delete(m.eps, epKey(e.Network, e.ContainerID))
	}
	m.mu.Unlock()
	var errs []error
	var removed []Endpoint
	for _, e := range stale {
		errs = append(errs, m.teardown(e), m.release(e))
		removed = append(removed, *e)
	}
	for _, e := range keep {
		errs = append(errs, m.tc.apply(e.HostVeth, ifbName(e), e.Bandwidth))
	}
	errs = append(errs, m.removeStrayLinks(), m.syncFirewall())
	return removed, errors.Join(errs...)
}

func (m *Manager) linkExists(name string) bool {
	_, err := m.nl.LinkByName(name)
	return err == nil
}

// removeStrayLinks deletes our veths, ifbs and anchors that no record names.
func (m *Manager) removeStrayLinks() error {
	links, err := m.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	m.mu.Lock()
	known := map[string]bool{}
	for _, e := range m.eps {
		known[e.HostVeth] = true
		known[ifbName(e)] = true
	}
	for _, n := range m.nets {
		known[n.Anchor] = true
	}
	m.mu.Unlock()
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if ours(name) && !known[name] {
			if err := m.nl.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete stray %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func ours(name string) bool {
	return slices.ContainsFunc([]string{vethPrefix, ifbPrefix, anchorPrefix}, func(p string) bool {
		return len(name) == len(p)+10 && name[:len(p)] == p
	})
}

// Teardown removes everything of ours from the host: endpoints, networks,
// anchors, the nftables table, and the records. For tests and uninstall.
func (m *Manager) Teardown(ctx context.Context) error {
	var errs []error
	for _, e := range m.Endpoints("") {
		errs = append(errs, m.Detach(ctx, e.ContainerID, e.Network))
	}
	m.mu.Lock()
	nets := make([]*Network, 0, len(m.nets))
	for _, n := range m.nets {
		nets = append(nets, n)
	}
	m.mu.Unlock()
	for _, n := range nets {
		m.dns.stop(n.ID)
		errs = append(errs, removeAnchor(m.nl, n), m.cfg.Store.Delete("network", n.ID))
		m.mu.Lock()
		delete(m.nets, n.ID)
		delete(m.ipam, n.ID)
		m.mu.Unlock()
	}
	errs = append(errs, m.fw.remove())
	return errors.Join(errs...)
}

var _ netlink.Link = (*netlink.Veth)(nil)
