package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// routeProto marks the routes we add (rtnetlink protocol number), so that
// host-route clash checks and cleanup can tell ours from the host's.
const routeProto = 0xe5

// hostLL is the link-local address every host-side veth carries when its
// network has IPv6: the container's IPv6 default route points at it.
var hostLL = netip.MustParseAddr("fe80::1")

// devName derives a stable 14-character interface name from the endpoint's
// identity, so Reconcile finds the links of an endpoint without a lookup
// table and two endpoints never race for one name (40 bits of hash).
func devName(prefix, netID, containerID string) string {
	h := sha256.Sum256([]byte(netID + "/" + containerID))
	return prefix + hex.EncodeToString(h[:5])
}

func anchorName(netID string) string { return anchorPrefix + netID[:10] }

// ensureAnchor creates the network's port-less bridge holding its gateway
// addresses, and an unreachable route over the subnet: an address not given
// to a container must not follow the default route out of the host, and the
// route shows the subnet as taken to anyone reading the routing table.
func ensureAnchor(h *netlink.Handle, n *Network) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Anchor}}
	if err := h.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("anchor %s: %w", n.Anchor, err)
	}
	link, err := h.LinkByName(n.Anchor)
	if err != nil {
		return fmt.Errorf("anchor %s: %w", n.Anchor, err)
	}
	addrs := []netip.Prefix{netip.PrefixFrom(n.Gateway, 32)}
	if n.Gateway6.IsValid() {
		addrs = append(addrs, netip.PrefixFrom(n.Gateway6, 128))
	}
	for _, a := range addrs {
		err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet(a), Flags: unix.IFA_F_NODAD})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("anchor %s address %s: %w", n.Anchor, a, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("anchor %s up: %w", n.Anchor, err)
	}
	for _, s := range []netip.Prefix{n.Subnet, n.Subnet6} {
		if !s.IsValid() {
			continue
		}
		r := &netlink.Route{Dst: ipnet(s.Masked()), Type: unix.RTN_UNREACHABLE, Protocol: routeProto}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s: %w", s, err)
		}
	}
	return nil
}

func removeAnchor(h *netlink.Handle, n *Network) error {
	for _, s := range []netip.Prefix{n.Subnet, n.Subnet6} {
		if !s.IsValid() {
			continue
		}
		r := &netlink.Route{Dst: ipnet(s.Masked()), Type: unix.RTN_UNREACHABLE, Protocol: routeProto}
		if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("route %s: %w", s, err)
		}
	}
	return delLink(h, n.Anchor)
}

func delLink(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// addVeth creates the pair with the peer born inside the container's
// namespace under its final name: no move, no rename, one netlink request.
func addVeth(h *netlink.Handle, ep *Endpoint) (netlink.Link, error) {
	ns, err := netns.GetFromPath(ep.NetnsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ep.NetnsPath, err)
	}
	defer ns.Close()
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ep.HostVeth},
		PeerName:      ep.Interface,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if ep.MAC != "" {
		mac, err := net.ParseMAC(ep.MAC)
		if err != nil {
			return nil, fmt.Errorf("mac %q: %w", ep.MAC, ErrInvalid)
		}
		v.PeerHardwareAddr = mac
	}
	if err := h.LinkAdd(v); err != nil {
		return nil, fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	link, err := h.LinkByName(ep.HostVeth)
	if err != nil {
		return nil, fmt.Errorf("veth %s: %w", ep.HostVeth, err)
	}
	return link, nil
}

// setupHostSide brings the host veth up with the routes to the container.
// route_localnet: a published port dialed from the host's 127.0.0.1 is
// DNATed in the output path and then routed out of this veth with a
// 127.0.0.1 source (masqueraded only later, in postrouting); the kernel
// refuses to route loopback sources out of a device without it.
func setupHostSide(h *netlink.Handle, link netlink.Link, ep *Endpoint) error {
	name := link.Attrs().Name
	if err := writeSysctl("net/ipv4/conf/"+name+"/route_localnet", "1"); err != nil {
		return err
	}
	if ep.IP6.IsValid() {
		// Accepting router advertisements from a container would let it
		// steer the host's IPv6 routing.
		if err := writeSysctl("net/ipv6/conf/"+name+"/accept_ra", "0"); err != nil {
			return err
		}
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(hostLL, 64)), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("veth %s link-local: %w", name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("veth %s up: %w", name, err)
	}
	routes := []netip.Prefix{netip.PrefixFrom(ep.IP, 32)}
	if ep.IP6.IsValid() {
		routes = append(routes, netip.PrefixFrom(ep.IP6, 128))
	}
	for _, p := range routes {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipnet(p), Scope: netlink.SCOPE_LINK, Protocol: routeProto}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s: %w", p, name, err)
		}
	}
	return nil
}

// setupContainerSide configures the interface inside the namespace: the
// address as a host route (/32, /128) so that every packet, even to a
// neighbour on the same network, goes to the gateway and through the host's
// filter; then the gateway as an on-link next hop and the default route.
//
// Several networks: each adds its subnet via its gateway; the first one
// also gets the default route (the kernel refuses a second default, and a
// container has one way out). Detaching the network of the default route
// does not move it to another network.
// h is a handle in the container's namespace; the link is returned.
func setupContainerSide(h *netlink.Handle, ep *Endpoint, n Network) (netlink.Link, error) {
	if err := loUp(h); err != nil {
		return nil, err
	}
	link, err := h.LinkByName(ep.Interface)
	if err != nil {
		return nil, fmt.Errorf("%s in netns: %w", ep.Interface, err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(ep.IP, 32))}); err != nil {
		return nil, fmt.Errorf("address %s: %w", ep.IP, err)
	}
	if ep.IP6.IsValid() {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(ep.IP6, 128)), Flags: unix.IFA_F_NODAD}); err != nil {
			return nil, fmt.Errorf("address %s: %w", ep.IP6, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("%s up: %w", ep.Interface, err)
	}
	idx := link.Attrs().Index
	routes := []*netlink.Route{
		{LinkIndex: idx, Dst: ipnet(netip.PrefixFrom(ep.Gateway, 32)), Scope: netlink.SCOPE_LINK},
		{LinkIndex: idx, Dst: ipnet(n.Subnet), Gw: ep.Gateway.AsSlice()},
	}
	defaults := []*netlink.Route{{LinkIndex: idx, Gw: ep.Gateway.AsSlice()}}
	if ep.IP6.IsValid() {
		routes = append(routes, &netlink.Route{LinkIndex: idx, Dst: ipnet(n.Subnet6), Gw: hostLL.AsSlice()})
		defaults = append(defaults, &netlink.Route{LinkIndex: idx, Gw: hostLL.AsSlice(), Family: unix.AF_INET6})
	}
	for _, r := range routes {
		if err := h.RouteAdd(r); err != nil {
			return nil, fmt.Errorf("route %v in netns: %w", r, err)
		}
	}
	for _, r := range defaults {
		if err := h.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("default route in netns: %w", err)
		}
	}
	return link, nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func writeSysctl(path, value string) error {
	if err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s: %w", path, err)
	}
	return nil
}

// hostRoutes returns the IPv4 and IPv6 destinations of the host's main
// routing table that are not ours, to refuse subnets that would clash.
func hostRoutes(h *netlink.Handle) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		rs, err := h.RouteList(nil, fam)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			if r.Protocol == routeProto || r.Dst == nil {
				continue
			}
			a, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			a = a.Unmap()
			if a.Is6() && a.IsLinkLocalUnicast() {
				continue
			}
			out = append(out, netip.PrefixFrom(a, ones))
		}
	}
	return out, nil
}
