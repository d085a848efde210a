package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vishvananda/netlink"
)

// Config wires a Manager.
type Config struct {
	Store Store
	// DefaultSubnet of the "bridge" network; zero picks the first subnet of
	// Pool that clashes with no host route.
	DefaultSubnet netip.Prefix
	// DefaultSubnet6 gives the "bridge" network IPv6 too (dockerd's --ipv6
	// --fixed-cidr-v6). A stored default network without endpoints is
	// recreated when it differs; one in use keeps its subnets.
	DefaultSubnet6 netip.Prefix
	// Pool of /16s for networks created without a subnet; default
	// 172.17.0.0/16 … 172.31.0.0/16.
	Pool []netip.Prefix
	// ResolvConf is the host's resolver file the DNS server forwards to and
	// containers of the default network copy; default /etc/resolv.conf.
	ResolvConf string
	// NoDNS disables the embedded DNS server (names are then not resolved).
	NoDNS bool
	// Table is the name of our nftables table (family inet); default
	// TableName. Only for several managers on one host (tests): the
	// links they make share the est* names.
	Table string
	// Upstreams (host:port) override the resolvers of ResolvConf for
	// forwarded names.
	Upstreams []string
}

// Manager owns the networks of one host. Safe for concurrent use. There
// must be one per host: the nftables table, anchors and sysctls it manages
// are host-wide.
type Manager struct {
	cfg  Config
	nl   *netlink.Handle // one netlink socket set for the host namespace, reused
	fw   *firewall
	dns  *dnsServers
	tc   *shaper
	rl   *relays
	mu   sync.Mutex           // guards the maps and pools below
	nets map[string]*Network  // by ID
	eps  map[string]*Endpoint // by netID/containerID
	ipam map[string][2]*pool  // by network ID: v4, v6 (nil if none)
}

// nameRE and the 64-byte cap check a network name. The cap is not a
// {0,63} in the pattern: that compiles to 63 copies at every start of the
// estiba binary (each CLI call, each container's init), ~0.3 ms.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// New loads the stored networks and endpoints, makes sure each network's
// anchor and the nftables table match them, and starts the DNS servers.
// It removes nothing: call Reconcile to drop what the engine no longer has.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("network: no store: %w", ErrInvalid)
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if len(cfg.Pool) == 0 {
		for i := 17; i <= 31; i++ {
			cfg.Pool = append(cfg.Pool, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
		}
	}
	// Only rtnetlink: with no family given the library also opens xfrm and
	// netfilter sockets, which fail with EPROTONOSUPPORT on kernels where
	// xfrm_user is a module that nobody loaded (Debian's, for one).
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if cfg.Table == "" {
		cfg.Table = TableName
	}
	fw, err := newFirewall(cfg.Table)
	if err != nil {
		h.Close()
		return nil, err
	}
	m := &Manager{cfg: cfg, nl: h, fw: fw, tc: &shaper{nl: h}, rl: &relays{ls: map[string][]net.Listener{}},
		nets: map[string]*Network{}, eps: map[string]*Endpoint{}, ipam: map[string][2]*pool{}}
	m.dns = newDNSServers(m, cfg.ResolvConf, cfg.Upstreams)
	if err := m.start(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Manager) start(ctx context.Context) error {
	// Routing between veths is the whole data path.
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if err := m.load(); err != nil {
		return err
	}
	if n := m.byName(DefaultNetwork); n != nil && n.Subnet6 != m.cfg.DefaultSubnet6 && !m.inUse(n.ID) {
		if err := m.dropNetwork(n); err != nil {
			return fmt.Errorf("default network: %w", err)
		}
	}
	if m.byName(DefaultNetwork) == nil {
		if _, err := m.createNetwork(NetworkConfig{Name: DefaultNetwork, Subnet: m.cfg.DefaultSubnet, Subnet6: m.cfg.DefaultSubnet6}, false); err != nil {
			return fmt.Errorf("default network: %w", err)
		}
	}
	for _, n := range m.nets {
		if err := m.bringUp(n); err != nil {
			return err
		}
	}
	for _, e := range m.eps {
		if err := m.rl.start(e); err != nil {
			return err
		}
	}
	return m.syncFirewall()
}

func (m *Manager) load() error {
	recs, err := m.cfg.Store.List("network")
	if err != nil {
		return err
	}
	for id, b := range recs {
		var n Network
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("network record %s: %w", id, err)
		}
		m.nets[n.ID] = &n
		m.ipam[n.ID] = newPools(&n)
	}
	recs, err = m.cfg.Store.List("endpoint")
	if err != nil {
		return err
	}
	for k, b := range recs {
		var e Endpoint
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("endpoint record %s: %w", k, err)
		}
		pools, ok := m.ipam[e.Network]
		if !ok {
			return fmt.Errorf("endpoint %s: network %s not stored", k, e.Network)
		}
		pools[0].take(e.IP)
		if e.IP6.IsValid() && pools[1] != nil {
			pools[1].take(e.IP6)
		}
		m.eps[epKey(e.Network, e.ContainerID)] = &e
	}
	return nil
}

func (m *Manager) inUse(netID string) bool {
	for _, e := range m.eps {
		if e.Network == netID {
			return true
		}
	}
	return false
}

// dropNetwork removes an unused network's kernel objects and record, at
// start (single-threaded).
func (m *Manager) dropNetwork(n *Network) error {
	if err := removeAnchor(m.nl, n); err != nil {
		return err
	}
	if err := m.cfg.Store.Delete("network", n.ID); err != nil {
		return err
	}
	delete(m.nets, n.ID)
	delete(m.ipam, n.ID)
	return nil
}

func newPools(n *Network) [2]*pool {
	p := [2]*pool{newPool(n.Subnet, n.Gateway)}
	if n.Subnet6.IsValid() {
		p[1] = newPool(n.Subnet6, n.Gateway6)
	}
	return p
}

func epKey(netID, containerID string) string { return netID + "/" + containerID }

// bringUp makes the kernel side of a network exist: anchor and DNS.
func (m *Manager) bringUp(n *Network) error {
	if n.Subnet6.IsValid() {
		// Forwarding IPv6 is global; set only once a network needs it.
		if err := writeSysctl("net/ipv6/conf/all/forwarding", "1"); err != nil {
			return err
		}
	}
	if err := ensureAnchor(m.nl, n); err != nil {
		return err
	}
	if n.DNS && !m.cfg.NoDNS {
		return m.dns.start(n)
	}
	return nil
}

// Close stops the DNS servers and closes sockets. Networks, endpoints and
// rules stay: a restarted daemon finds them (see Reconcile).
func (m *Manager) Close() error {
	m.dns.stopAll()
	m.rl.stopAll()
	m.fw.close()
	m.nl.Close()
	return nil
}

// syncFirewall rebuilds the table from a snapshot taken while the firewall
// is locked: an Attach adding its elements either lands in the snapshot or
// waits for the rebuild to finish, so no element is lost.
func (m *Manager) syncFirewall() error {
	return m.fw.sync(m.snapshot)
}

func (m *Manager) snapshot() ([]*Network, []*Endpoint) {
	m.mu.Lock()
	nets := make([]*Network, 0, len(m.nets))
	for _, n := range m.nets {
		nets = append(nets, n)
	}
	slices.SortFunc(nets, func(a, b *Network) int { return cmpStr(a.ID, b.ID) })
	eps := make([]*Endpoint, 0, len(m.eps))
	for _, e := range m.eps {
		eps = append(eps, e)
	}
	m.mu.Unlock()
	return nets, eps
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// byName finds a network by name, ID or unique ID prefix (12+ characters).
// Caller holds mu or is single-threaded.
func (m *Manager) byName(ref string) *Network {
	if n, ok := m.nets[ref]; ok {
		return n
	}
	for _, n := range m.nets {
		if n.Name == ref {
			return n
		}
	}
	if len(ref) >= 12 {
		for id, n := range m.nets {
			if len(id) > len(ref) && id[:len(ref)] == ref {
				return n
			}
		}
	}
	return nil
}

// CreateNetwork creates a user-defined network (with DNS by name).
func (m *Manager) CreateNetwork(ctx context.Context, cfg NetworkConfig) (*Network, error) {
	n, err := m.createNetwork(cfg, true)
	if err != nil {
		return nil, err
	}
	if err := m.bringUp(n); err != nil {
		m.RemoveNetwork(ctx, n.ID)
		return nil, err
	}
	if err := m.syncFirewall(); err != nil {
		m.RemoveNetwork(ctx, n.ID)
		return nil, err
	}
	c := *n
	return &c, nil
}

func (m *Manager) createNetwork(cfg NetworkConfig, dns bool) (*Network, error) {
	if len(cfg.Name) > 64 || !nameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("network name %q: %w", cfg.Name, ErrInvalid)
	}
	routes, err := hostRoutes(m.nl)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byName(cfg.Name) != nil {
		return nil, fmt.Errorf("network %q exists: %w", cfg.Name, ErrConflict)
	}
	n := &Network{ID: newID(), Name: cfg.Name, Driver: "routed", Internal: cfg.Internal, Labels: cfg.Labels, DNS: dns}
	n.Anchor = anchorName(n.ID)
	if err := m.pickSubnets(n, cfg, routes); err != nil {
		return nil, err
	}
	b, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	if err := m.cfg.Store.Put("network", n.ID, b); err != nil {
		return nil, err
	}
	m.nets[n.ID] = n
	m.ipam[n.ID] = newPools(n)
	return n, nil
}

// pickSubnets validates the requested subnets and gateways, or picks a
// free pool subnet. Caller holds mu.
func (m *Manager) pickSubnets(n *Network, cfg NetworkConfig, routes []netip.Prefix) error {
	taken := slices.Clone(routes)
	for _, o := range m.nets {
		taken = append(taken, o.Subnet)
		if o.Subnet6.IsValid() {
			taken = append(taken, o.Subnet6)
		}
	}
	clash := func(p netip.Prefix) error {
		for _, t := range taken {
			if t.Bits() > 0 && t.Overlaps(p) {
				return fmt.Errorf("subnet %s overlaps %s, in use on this host: %w", p, t, ErrConflict)
			}
		}
		return nil
	}
	if !cfg.Subnet.IsValid() {
		for _, p := range m.cfg.Pool {
			if clash(p) == nil {
				cfg.Subnet = p
				break
			}
		}
		if !cfg.Subnet.IsValid() {
			return fmt.Errorf("no free subnet left in the pool: %w", ErrConflict)
		}
	}
	var err error
	if n.Subnet, n.Gateway, err = subnetGateway(cfg.Subnet, cfg.Gateway, true); err != nil {
		return err
	}
	if err := clash(n.Subnet); err != nil {
		return err
	}
	if cfg.Subnet6.IsValid() {
		if n.Subnet6, n.Gateway6, err = subnetGateway(cfg.Subnet6, cfg.Gateway6, false); err != nil {
			return err
		}
		return clash(n.Subnet6)
	}
	if cfg.Gateway6.IsValid() {
		return fmt.Errorf("IPv6 gateway without IPv6 subnet: %w", ErrInvalid)
	}
	return nil
}

func subnetGateway(s netip.Prefix, gw netip.Addr, v4 bool) (netip.Prefix, netip.Addr, error) {
	if s.Addr().Is4() != v4 || (v4 && s.Bits() > 30) || (!v4 && s.Bits() > 126) {
		return s, gw, fmt.Errorf("subnet %s: wrong family or too small: %w", s, ErrInvalid)
	}
	if s != s.Masked() {
		return s, gw, fmt.Errorf("subnet %s has host bits set (did you mean %s?): %w", s, s.Masked(), ErrInvalid)
	}
	if !gw.IsValid() {
		return s, s.Addr().Next(), nil
	}
	if !s.Contains(gw) || gw == s.Addr() || (v4 && gw == lastAddr(s)) {
		return s, gw, fmt.Errorf("gateway %s: not a host address of %s: %w", gw, s, ErrInvalid)
	}
	return s, gw, nil
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// RemoveNetwork removes a network with no endpoints.
func (m *Manager) RemoveNetwork(ctx context.Context, ref string) error {
	m.mu.Lock()
	n := m.byName(ref)
	if n == nil {
		m.mu.Unlock()
		return fmt.Errorf("network %q: %w", ref, ErrNotFound)
	}
	for _, e := range m.eps {
		if e.Network == n.ID {
			m.mu.Unlock()
			return fmt.Errorf("network %q has endpoints (%s): %w", n.Name, e.ContainerID, ErrInUse)
		}
	}
	delete(m.nets, n.ID)
	delete(m.ipam, n.ID)
	m.mu.Unlock()
	m.dns.stop(n.ID)
	if err := removeAnchor(m.nl, n); err != nil {
		return err
	}
	if err := m.syncFirewall(); err != nil {
		return err
	}
	return m.cfg.Store.Delete("network", n.ID)
}

// PruneNetworks removes every user-defined network without endpoints and
// returns their names.
func (m *Manager) PruneNetworks(ctx context.Context) ([]string, error) {
	var names []string
	for _, n := range m.Networks() {
		if n.Name == DefaultNetwork || len(m.Endpoints(n.ID)) > 0 {
			continue
		}
		if err := m.RemoveNetwork(ctx, n.ID); err != nil {
			if errors.Is(err, ErrInUse) {
				continue // an Attach won the race
			}
			return names, err
		}
		names = append(names, n.Name)
	}
	return names, nil
}

// Networks lists the networks, sorted by name.
func (m *Manager) Networks() []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Network, 0, len(m.nets))
	for _, n := range m.nets {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b Network) int { return cmpStr(a.Name, b.Name) })
	return out
}

// Inspect returns one network by name or ID.
func (m *Manager) Inspect(ref string) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.byName(ref)
	if n == nil {
		return Network{}, fmt.Errorf("network %q: %w", ref, ErrNotFound)
	}
	return *n, nil
}

// Endpoints lists the endpoints of a network (name or ID), by container ID;
// an empty ref lists all.
func (m *Manager) Endpoints(ref string) []Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	var id string
	if ref != "" {
		n := m.byName(ref)
		if n == nil {
			return nil
		}
		id = n.ID
	}
	var out []Endpoint
	for _, e := range m.eps {
		if id == "" || e.Network == id {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return cmpStr(a.ContainerID, b.ContainerID) })
	return out
}

// ContainerEndpoints lists one container's endpoints on all networks.
func (m *Manager) ContainerEndpoints(containerID string) []Endpoint {
	var out []Endpoint
	for _, e := range m.Endpoints("") {
		if e.ContainerID == containerID {
			out = append(out, e)
		}
	}
	return out
}
