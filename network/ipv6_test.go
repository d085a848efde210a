package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// TestIPv6: a network with an IPv6 subnet gives both families; containers
// reach each other over IPv6 and the static-address rules hold.
func TestIPv6(t *testing.T) {
	m, _ := newTestManager(t)
	_, err := m.CreateNetwork(context.Background(), NetworkConfig{Name: "six",
		Subnet: netip.MustParsePrefix("10.241.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:e5:1::/64")})
	if err != nil {
		t.Fatal(err)
	}
	ns1, ns2 := newNetns(t, "s1"), newNetns(t, "s2")
	e1 := mustAttach(t, m, "s1", ns1, "six", AttachOptions{})
	e2 := mustAttach(t, m, "s2", ns2, "six", AttachOptions{IP6: netip.MustParseAddr("fd00:e5:1::99")})
	if !e1.IP6.IsValid() || e2.IP6.String() != "fd00:e5:1::99" {
		t.Fatalf("addresses %s %s", e1.IP6, e2.IP6)
	}
	serveEcho(t, ns2, "[fd00:e5:1::99]:8080", "s2")
	got, err := dialRetry(ns1, net.JoinHostPort(e2.IP6.String(), "8080"))
	if !strings.Contains(got, "hello from s2 to ["+e1.IP6.String()+"]") {
		t.Fatalf("v6 s1 -> s2: %q %v", got, err)
	}
	_, err = m.Attach(context.Background(), "s3", newNetns(t, "s3"), "six", AttachOptions{IP6: netip.MustParseAddr("fd00:e5:1::99")})
	if err == nil {
		t.Fatal("duplicate static IPv6 accepted")
	}
}

// dialRetry dials until it gets an answer (neighbour discovery may need a
// moment on a busy host), at most 2 s.
func dialRetry(ns, addr string) (got string, err error) {
	for range 20 {
		if got, err = dialIn(ns, addr, time.Second); err == nil {
			return got, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return got, err
}

// TestIPv6NAT: published ports over IPv6 (every address, [::1] only, from
// the host's ::1 and from another network), isolation of IPv6 networks,
// NAT66 masquerade for egress, and AAAA answers of the network's DNS.
func TestIPv6NAT(t *testing.T) {
	testutil6(t)
	up := fakeUpstream(t)
	m := newManagerWith(t, Config{Upstreams: []string{up}})
	ctx := context.Background()
	for _, c := range []NetworkConfig{
		{Name: "sa", Subnet: netip.MustParsePrefix("10.242.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:e5:2::/64")},
		{Name: "sb", Subnet: netip.MustParsePrefix("10.243.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:e5:3::/64")},
	} {
		if _, err := m.CreateNetwork(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	v4only := mustNet(t, m, "sc", "10.244.0.0/24", false)
	ports, err := ParsePorts("18090:8080")
	if err != nil {
		t.Fatal(err)
	}
	lo6, err := ParsePorts("[::1]:18091:8080")
	if err != nil {
		t.Fatal(err)
	}
	ns1, ns2, ns3 := newNetns(t, "x1"), newNetns(t, "x2"), newNetns(t, "x3")
	e1 := mustAttach(t, m, "x1", ns1, "sa", AttachOptions{Name: "web", Ports: append(ports, lo6...)})
	e2 := mustAttach(t, m, "x2", ns2, "sa", AttachOptions{Name: "client"})
	e3 := mustAttach(t, m, "x3", ns3, "sb", AttachOptions{})
	serveEcho(t, ns1, ":8080", "x1")
	ext := newNetns(t, "xext")
	addOutside6(t, ext)
	serveEcho(t, ext, "[2001:db8:e5::2]:9000", "ext")

	cases := []struct {
		name, ns, addr, from string
		ok                   bool
	}{
		{"host ::1", "", "[::1]:18090", "", true},
		{"host 127.0.0.1", "", "127.0.0.1:18090", "", true},
		{"host ::1, port bound to ::1", "", "[::1]:18091", "", true},
		{"host 127.0.0.1, port bound to ::1", "", "127.0.0.1:18091", "", false},
		{"host gateway6", "", "[" + e1.Gateway6.String() + "]:18090", "", true},
		{"gateway6, port bound to ::1", "", "[" + e1.Gateway6.String() + "]:18091", "", false},
		{"same network direct", ns2, "[" + e1.IP6.String() + "]:8080", "[" + e2.IP6.String() + "]", true},
		{"other network direct", ns3, "[" + e1.IP6.String() + "]:8080", "", false},
		{"other network via its gateway6", ns3, "[" + e3.Gateway6.String() + "]:18090", "", true},
		{"itself via its gateway6 (hairpin)", ns1, "[" + e1.Gateway6.String() + "]:18090", "", true},
		{"egress masqueraded", ns1, "[2001:db8:e5::2]:9000", "[2001:db8:e5::1]", true},
	}
	for _, c := range cases {
		var got string
		var err error
		if c.ok {
			got, err = dialRetry(c.ns, c.addr)
		} else {
			got, err = dialIn(c.ns, c.addr, 300*time.Millisecond)
		}
		if c.ok && (err != nil || !strings.Contains(got, "hello from") || !strings.Contains(got, c.from)) {
			t.Errorf("%s (%s): %q %v, want from %s", c.name, c.addr, got, err, c.from)
		}
		if !c.ok && err == nil {
			t.Errorf("%s (%s): reached: %q", c.name, c.addr, got)
		}
	}
	for _, server := range []string{e2.Gateway.String(), e2.Gateway6.String()} {
		addr := net.JoinHostPort(server, "53")
		if got, err := query(ns2, addr, "web", "udp", dnsmessage.TypeAAAA); err != nil || got != e1.IP6.String() {
			t.Errorf("AAAA web via %s: %q %v, want %s", addr, got, err, e1.IP6)
		}
		if got, err := query(ns2, addr, "web", "tcp", dnsmessage.TypeA); err != nil || got != e1.IP.String() {
			t.Errorf("A web via %s: %q %v, want %s", addr, got, err, e1.IP)
		}
	}
	// Another network's IPv6 DNS server is not reachable.
	if _, err := query(ns3, net.JoinHostPort(e2.Gateway6.String(), "53"), "web", "tcp", dnsmessage.TypeAAAA); err == nil {
		t.Error("container queried another network's IPv6 DNS server")
	}
	// Publishing on an IPv6 address needs an IPv6 network, but for ::1,
	// which the relay serves (so IPv4-only containers answer there too,
	// as with Docker); UDP is not relayed. [::] and 0.0.0.0 of the same
	// port do not clash.
	ns4 := newNetns(t, "x4")
	mustAttach(t, m, "x4", ns4, v4only.Name, AttachOptions{Ports: mustPorts(t, "[::1]:18093:8080", "18094:8080")})
	serveEcho(t, ns4, ":8080", "x4")
	for _, addr := range []string{"[::1]:18093", "[::1]:18094", "127.0.0.1:18094"} {
		if got, err := dialRetry("", addr); !strings.Contains(got, "hello from x4") {
			t.Errorf("IPv4-only container via %s: %q %v", addr, got, err)
		}
	}
	for _, spec := range []string{"[fd00::1]:18095:8080", "[::1]:18095:53/udp"} {
		if _, err := m.Attach(ctx, "x9", newNetns(t, "x9"), v4only.Name, AttachOptions{Ports: mustPorts(t, spec)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s on an IPv4 network: %v", spec, err)
		}
	}
	any6, _ := ParsePorts("[::]:18092:8080")
	any4, _ := ParsePorts("0.0.0.0:18092:8080")
	mustAttach(t, m, "x5", newNetns(t, "x5"), "sb", AttachOptions{Ports: any6})
	mustAttach(t, m, "x6", newNetns(t, "x6"), "sb", AttachOptions{Ports: any4})
	if _, err := m.Attach(ctx, "x7", newNetns(t, "x7"), "sb", AttachOptions{Ports: lo6[:1:1]}); !errors.Is(err, ErrConflict) {
		t.Errorf("port 18091 published twice: %v", err)
	}
	if _, err := m.Attach(ctx, "x8", newNetns(t, "x8"), "sb", AttachOptions{Ports: ports}); !errors.Is(err, ErrConflict) {
		t.Errorf("port 18090 published twice: %v", err)
	}
	// Detach removes the IPv6 elements too.
	if err := m.Detach(ctx, "x1", "sa"); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"[::1]:18090", "[::1]:18091", "[" + e1.Gateway6.String() + "]:18090"} {
		if _, err := dialIn("", addr, 300*time.Millisecond); err == nil {
			t.Errorf("%s still published after detach", addr)
		}
	}
}

func mustPorts(t *testing.T, specs ...string) []PortMapping {
	t.Helper()
	var out []PortMapping
	for _, s := range specs {
		p, err := ParsePorts(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p...)
	}
	return out
}

func testutil6(t *testing.T) {
	t.Helper()
	if _, err := netlink.RouteGet(net.IPv6loopback); err != nil {
		t.Skipf("no IPv6 on this host: %v", err)
	}
}

// addOutside6 links ext to the host as an IPv6 "internet" host:
// 2001:db8:e5::2 in ext, 2001:db8:e5::1 on the host side.
func addOutside6(t *testing.T, ext string) {
	t.Helper()
	h, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := addVeth(h, &Endpoint{HostVeth: "esttestext6", Interface: "eth0", NetnsPath: ext})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { delLink(h, "esttestext6") })
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet(netip.MustParsePrefix("2001:db8:e5::1/64")), Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	err = InNetns(ext, func() error {
		in, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(in, &netlink.Addr{IPNet: ipnet(netip.MustParsePrefix("2001:db8:e5::2/64")), Flags: unix.IFA_F_NODAD}); err != nil {
			return err
		}
		return netlink.LinkSetUp(in)
	})
	if err != nil {
		t.Fatal(err)
	}
}
