// Package network gives containers their network: per-container network
// namespaces attached to named networks, IPAM, nftables NAT and published
// ports, isolation, an embedded DNS server, and tc bandwidth limits.
//
// # Routed, not bridged
//
// Every network uses the same L3 "routed" data path (the approach of Calico):
// no Linux bridge. Each container gets a veth pair; the container side is
// eth0 holding the container's address as a /32 (/128) with the gateway as an
// on-link next hop; the host side holds no address and the host has a /32
// (/128) route to the container through it. The gateway address lives on one
// port-less "anchor" bridge per network, so it is a local address of the host
// and the host answers ARP for it on every veth (arp_ignore=0).
// Why: a Linux bridge takes at most 1024 ports (BR_MAX_PORTS), so a bridge
// would cap a network at ~1000 containers or force sharding one L2 segment
// over several bridges; and containers of mutually hostile tenants sharing an
// L2 segment can ARP-spoof and flood each other. Routed, every packet crosses
// the host's IP stack, where one nftables table filters it, and a network
// has no size limit but its subnet. The anchor bridge never gets ports.
//
// # Namespaces
//
// Attach takes the path of a network namespace: /proc/<pid>/ns/net of a
// running process, or a file made by [CreateNetns] under a run directory the
// caller owns (bind-mounted nsfs, so it outlives any process; the engine
// creates it before the container starts, passes it to the runtime as the
// OCI network namespace path, and removes it with [RemoveNetns] after the
// container is deleted). Modes "host" and "container:<id>" need no call here;
// "none" is [SetupLoopback] only.
//
// # Firewall
//
// One nftables table, "inet estiba", holds everything: masquerade for egress
// of non-internal networks, DNAT of published ports from maps keyed by
// (protocol, port) so lookups stay O(1) with thousands of ports, isolation of
// networks in the forward chain, an input chain that lets containers reach
// the host only for DNS on their gateway, and an anti-spoofing fib check.
// The table is rebuilt atomically (one netlink batch) whenever networks change
// and on Reconcile; attaching and detaching a container only adds or removes
// its map elements.
//
// # Bandwidth
//
// See shaper: tbf on the host veth for traffic into a container; ifb +
// mirred + tbf for traffic out of it (this kernel has no act_police).
//
// # Known limits
//
//   - A published port shadows a host process listening on the same port
//     (DNAT happens before the socket lookup); nothing checks for one.
//   - IPv6: a port published without a host address is DNATed on every
//     IPv6 address of the host too when the container has IPv6 ([::] alone
//     when given as such). The host's ::1 is served by a relay in the daemon
//     (see relays: IPv6 has no route_localnet), for TCP only, and only while
//     the daemon runs; UDP on [::1] is refused.
//   - One manager per host: a second one (another daemon) rebuilds its own
//     table, whose forward chain drops what it does not know, and its
//     Reconcile deletes est* links it has no record of. Config.Table only
//     keeps two managers (tests) from rebuilding the same table.
//   - A container on several networks has one default route, from the
//     first; detaching that network does not move it.
//   - Containers cannot ping their gateway: the input chain admits DNS only.
//   - An IPv6 network sets net.ipv6.conf.all.forwarding=1, after which the
//     host ignores router advertisements on uplinks whose accept_ra is 1.
//   - Another table of the host's (a forward policy of drop) can still drop
//     container traffic; ours only adds restrictions to it.
//   - FileStore does not fsync; the engine's bbolt store does.
package network
