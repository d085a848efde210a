package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestCreateNetworkValidation(t *testing.T) {
	m, _ := newTestManager(t)
	ctx := context.Background()
	mustNet(t, m, "taken", "10.242.0.0/24", false)
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	tests := []struct {
		name string
		cfg  NetworkConfig
		want error
	}{
		{"bad name", NetworkConfig{Name: "-x"}, ErrInvalid},
		{"duplicate name", NetworkConfig{Name: "taken"}, ErrConflict},
		{"host bits", NetworkConfig{Name: "n1", Subnet: p("10.243.0.1/24")}, ErrInvalid},
		{"gateway outside", NetworkConfig{Name: "n2", Subnet: p("10.243.0.0/24"), Gateway: a("10.244.0.1")}, ErrInvalid},
		{"gateway broadcast", NetworkConfig{Name: "n3", Subnet: p("10.243.0.0/24"), Gateway: a("10.243.0.255")}, ErrInvalid},
		{"overlaps network", NetworkConfig{Name: "n4", Subnet: p("10.242.0.128/25")}, ErrConflict},
		{"overlaps host route", NetworkConfig{Name: "n5", Subnet: p("192.0.2.0/28")}, ErrConflict},
		{"v6 gateway alone", NetworkConfig{Name: "n6", Subnet: p("10.243.0.0/24"), Gateway6: a("fd00::1")}, ErrInvalid},
		{"v4 as v6", NetworkConfig{Name: "n7", Subnet: p("10.243.0.0/24"), Subnet6: p("10.245.0.0/24")}, ErrInvalid},
	}
	for _, tt := range tests {
		if _, err := m.CreateNetwork(ctx, tt.cfg); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	// A static address must be a free host address of the subnet.
	ns := newNetns(t, "v1")
	for _, ip := range []string{"10.242.0.0", "10.242.0.1", "10.242.0.255", "10.9.9.9"} {
		if _, err := m.Attach(ctx, "v1", ns, "taken", AttachOptions{IP: a(ip)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("static %s: %v", ip, err)
		}
	}
	// A namespace that does not exist: an error, and nothing is kept.
	if _, err := m.Attach(ctx, "v1", "/nonexistent/netns", "taken", AttachOptions{IP: a("10.242.0.9")}); err == nil {
		t.Error("attach to a missing netns succeeded")
	}
	if eps := m.ContainerEndpoints("v1"); len(eps) != 0 {
		t.Errorf("failed attach left %v", eps)
	}
	mustAttach(t, m, "v1", ns, "taken", AttachOptions{IP: a("10.242.0.9")})
	if _, err := m.Attach(ctx, "v2", newNetns(t, "v2"), "taken", AttachOptions{IP: a("10.242.0.9")}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate static: %v", err)
	}
	if err := m.RemoveNetwork(ctx, "taken"); !errors.Is(err, ErrInUse) {
		t.Errorf("rm with endpoint: %v", err)
	}
	mustNet(t, m, "idle", "10.246.0.0/24", false)
	pruned, err := m.PruneNetworks(ctx)
	if err != nil || len(pruned) != 1 || pruned[0] != "idle" {
		t.Errorf("prune: %v %v", pruned, err)
	}
	if _, err := m.Inspect("idle"); !errors.Is(err, ErrNotFound) {
		t.Errorf("inspect pruned: %v", err)
	}
	// Network mode none: loopback only.
	none := newNetns(t, "none")
	if err := SetupLoopback(none); err != nil {
		t.Fatal(err)
	}
	h, closeNS, err := nsHandle(none)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNS()
	links, err := h.LinkList()
	if err != nil || len(links) != 1 || links[0].Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("none: want only lo, up: %v %v", links, err)
	}
}

// TestDefaultNetworkIPv6: the daemon's DefaultSubnet6 gives the default
// network IPv6 (dockerd's --ipv6 --fixed-cidr-v6); a restart with another
// setting recreates it while unused and keeps it while in use.
func TestDefaultNetworkIPv6(t *testing.T) {
	testutil6(t)
	m, cfg := newTestManager(t)
	ctx := context.Background()
	if n, _ := m.Inspect(DefaultNetwork); n.Subnet6.IsValid() {
		t.Fatalf("default network has %s without DefaultSubnet6", n.Subnet6)
	}
	m.Close()
	cfg.DefaultSubnet6 = netip.MustParsePrefix("fd00:e5:9::/64")
	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	n, _ := m2.Inspect(DefaultNetwork)
	if n.Subnet6 != cfg.DefaultSubnet6 || n.Gateway6.String() != "fd00:e5:9::1" {
		t.Fatalf("default network: %s gw %s, want %s", n.Subnet6, n.Gateway6, cfg.DefaultSubnet6)
	}
	ep := mustAttach(t, m2, "d6", newNetns(t, "d6"), DefaultNetwork, AttachOptions{Ports: mustPorts(t, "18096:8080")})
	if !cfg.DefaultSubnet6.Contains(ep.IP6) {
		t.Fatalf("endpoint on the default network got %s", ep.IP6)
	}
	m2.Close()
	cfg.DefaultSubnet6 = netip.Prefix{}
	m3, err := New(ctx, cfg) // in use: kept as it is
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		m3.Teardown(ctx)
		m3.Close()
	}()
	if n3, _ := m3.Inspect(DefaultNetwork); n3.ID != n.ID || n3.Subnet6 != n.Subnet6 {
		t.Errorf("default network in use changed: %+v", n3)
	}
}
