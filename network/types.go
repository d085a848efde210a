package network

import (
	"errors"
	"net/netip"
)

// Error classes; callers test them with errors.Is and map them to API codes.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid argument")
	ErrInUse    = errors.New("in use")
)

// DefaultNetwork is the name of the network containers join when no other
// is named; like Docker's, it has no DNS by container name.
const DefaultNetwork = "bridge"

// NetworkConfig is what CreateNetwork takes.
type NetworkConfig struct {
	Name     string
	Subnet   netip.Prefix // IPv4; zero = pick a free /16 from the pool
	Gateway  netip.Addr   // zero = first address of Subnet
	Subnet6  netip.Prefix // optional IPv6 subnet
	Gateway6 netip.Addr   // zero = first address of Subnet6
	// Internal networks have no route out: no masquerade, forward to
	// anything but their own subnet is dropped.
	Internal bool
	Labels   map[string]string
}

// Network is a network as stored and inspected.
type Network struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Driver   string            `json:"driver"`
	Subnet   netip.Prefix      `json:"subnet"`
	Gateway  netip.Addr        `json:"gateway"`
	Subnet6  netip.Prefix      `json:"subnet6,omitzero"`
	Gateway6 netip.Addr        `json:"gateway6,omitzero"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Anchor is the port-less bridge holding the gateway addresses.
	Anchor string `json:"anchor"`
	// DNS is true for user-defined networks: the embedded server answers
	// container names on Gateway:53.
	DNS bool `json:"dns"`
}

// PortMapping publishes ContainerPort of the endpoint on HostIP:HostPort.
// A zero HostIP means every host address (including 127.0.0.1).
type PortMapping struct {
	HostIP        netip.Addr `json:"host_ip,omitzero"`
	HostPort      uint16     `json:"host_port"`
	ContainerPort uint16     `json:"container_port"`
	Proto         string     `json:"proto"` // "tcp" or "udp"
}

// Bandwidth limits one endpoint, in bits per second; 0 means unlimited.
// Ingress is traffic into the container, Egress traffic out of it. Bursts
// are in bytes; 0 picks a burst of ~rate/100 (10 ms), at least 16 KiB.
type Bandwidth struct {
	IngressRate  uint64 `json:"ingress_rate,omitempty"`
	IngressBurst uint64 `json:"ingress_burst,omitempty"`
	EgressRate   uint64 `json:"egress_rate,omitempty"`
	EgressBurst  uint64 `json:"egress_burst,omitempty"`
}

// AttachOptions are the per-endpoint settings of Attach.
type AttachOptions struct {
	// Name is the container name answered by DNS; Aliases are more names.
	Name    string
	Aliases []string
	// IP and IP6 request static addresses; zero allocates one.
	IP  netip.Addr
	IP6 netip.Addr
	// Interface inside the namespace; default: the lowest ethN the
	// container does not have yet (eth0, then eth1 for a second network).
	Interface string
	Ports     []PortMapping
	Bandwidth Bandwidth
	// MAC address of the container interface; empty = random.
	MAC string
}

// Endpoint is one container attached to one network.
type Endpoint struct {
	ContainerID string        `json:"container_id"`
	Network     string        `json:"network"` // network ID
	NetnsPath   string        `json:"netns"`
	Name        string        `json:"name,omitempty"`
	Aliases     []string      `json:"aliases,omitempty"`
	Interface   string        `json:"interface"`
	HostVeth    string        `json:"host_veth"`
	IP          netip.Addr    `json:"ip"`
	IP6         netip.Addr    `json:"ip6,omitzero"`
	Gateway     netip.Addr    `json:"gateway"`
	Gateway6    netip.Addr    `json:"gateway6,omitzero"`
	MAC         string        `json:"mac,omitempty"`
	Ports       []PortMapping `json:"ports,omitempty"`
	Bandwidth   Bandwidth     `json:"bandwidth,omitzero"`
}

// Stats are byte and packet counters of an endpoint, from the container's
// point of view (Rx = into the container).
type Stats struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
	RxDropped, TxDropped uint64
}

// DesiredEndpoint names an endpoint that should exist after a daemon restart.
type DesiredEndpoint struct {
	ContainerID string
	Network     string // name or ID
}
