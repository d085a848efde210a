package network

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestIsolationAndEgress: two containers on net A reach each other, one on
// net B reaches neither; egress to an "outside" namespace is masqueraded
// except from an internal network.
func TestIsolationAndEgress(t *testing.T) {
	m, _ := newTestManager(t)
	ctx := context.Background()
	mustNet(t, m, "neta", "10.231.0.0/24", false)
	mustNet(t, m, "netb", "10.232.0.0/24", false)
	mustNet(t, m, "neti", "10.233.0.0/24", true)
	ns1, ns2, ns3, ns4 := newNetns(t, "c1"), newNetns(t, "c2"), newNetns(t, "c3"), newNetns(t, "c4")
	e1 := mustAttach(t, m, "c1", ns1, "neta", AttachOptions{})
	e2 := mustAttach(t, m, "c2", ns2, "neta", AttachOptions{IP: netip.MustParseAddr("10.231.0.77")})
	e3 := mustAttach(t, m, "c3", ns3, "netb", AttachOptions{})
	mustAttach(t, m, "c4", ns4, "neti", AttachOptions{})
	if e1.IP != netip.MustParseAddr("10.231.0.2") || e2.IP != netip.MustParseAddr("10.231.0.77") {
		t.Fatalf("addresses: %s %s", e1.IP, e2.IP)
	}
	serveEcho(t, ns2, e2.IP.String()+":8080", "c2")
	serveEcho(t, ns1, e1.IP.String()+":8080", "c1")

	got, err := dialIn(ns1, e2.IP.String()+":8080", 2*time.Second)
	if err != nil || !strings.Contains(got, "hello from c2 to "+e1.IP.String()) {
		t.Fatalf("c1 -> c2 on one network: %q %v", got, err)
	}
	if _, err := dialIn(ns3, e2.IP.String()+":8080", 300*time.Millisecond); err == nil {
		t.Fatal("c3 on net B reached c2 on net A")
	}
	if _, err := dialIn(ns3, e1.Gateway.String()+":22", 300*time.Millisecond); err == nil {
		t.Fatal("container reached a host port")
	}

	// The outside world: a namespace behind a veth of the host.
	ext := newNetns(t, "ext")
	outside := addOutside(t, ext)
	serveEcho(t, ext, outside+":9090", "ext")
	got, err = dialIn(ns1, outside+":9090", 2*time.Second)
	if err != nil || !strings.Contains(got, "to 198.51.100.1:") {
		t.Fatalf("egress not masqueraded: %q %v", got, err)
	}
	if _, err := dialIn(ns4, outside+":9090", 300*time.Millisecond); err == nil {
		t.Fatal("internal network reached the outside")
	}
	// The outside cannot reach a container directly, even with a route.
	routeVia(t, ext, "10.231.0.0/24", "198.51.100.1")
	if _, err := dialIn(ext, e2.IP.String()+":8080", 300*time.Millisecond); err == nil {
		t.Fatal("outside reached an unpublished container port")
	}

	// A host service on all addresses is not reachable from a container.
	hostLn, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	go func() {
		for {
			c, err := hostLn.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host\n"))
			c.Close()
		}
	}()
	hostPort := strconv.Itoa(hostLn.Addr().(*net.TCPAddr).Port)
	for _, a := range []string{e1.Gateway.String(), "198.51.100.1", e3.Gateway.String()} {
		if _, err := dialIn(ns1, net.JoinHostPort(a, hostPort), 300*time.Millisecond); err == nil {
			t.Errorf("container reached host service on %s", a)
		}
	}

	// A forged source address is dropped (fib saddr . iif check).
	if err := addAddr(ns1, "eth0", "10.231.0.50/32"); err != nil {
		t.Fatal(err)
	}
	err = InNetns(ns1, func() error {
		d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP("10.231.0.50")}}
		c, err := d.Dial("tcp", e2.IP.String()+":8080")
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Error("spoofed source address got through")
	}

	// connect: c1 joins net B as eth1 and reaches c3 there.
	e1b := mustAttach(t, m, "c1", ns1, "netb", AttachOptions{})
	if e1b.Interface != "eth1" {
		t.Errorf("second network interface %q, want eth1", e1b.Interface)
	}
	serveEcho(t, ns3, e3.IP.String()+":8080", "c3")
	if got, err := dialIn(ns1, e3.IP.String()+":8080", 2*time.Second); err != nil || !strings.Contains(got, "to "+e1b.IP.String()) {
		t.Errorf("c1 -> c3 after connect: %q %v", got, err)
	}
	if err := m.Detach(ctx, "c1", "netb"); err != nil {
		t.Fatal(err)
	}

	if err := m.RemoveNetwork(ctx, "neta"); err == nil {
		t.Fatal("RemoveNetwork with endpoints succeeded")
	}
	if err := m.Detach(ctx, "c1", "neta"); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(ctx, "c2", "neta"); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveNetwork(ctx, "neta"); err != nil {
		t.Fatal(err)
	}
}

func routeVia(t *testing.T, ns, dst, gw string) {
	t.Helper()
	h, closeNS, err := nsHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNS()
	r := &netlink.Route{Dst: ipnet(netip.MustParsePrefix(dst)), Gw: net.ParseIP(gw)}
	if err := h.RouteAdd(r); err != nil {
		t.Fatal(err)
	}
}

func addAddr(ns, dev, addr string) error {
	h, closeNS, err := nsHandle(ns)
	if err != nil {
		return err
	}
	defer closeNS()
	l, err := h.LinkByName(dev)
	if err != nil {
		return err
	}
	return h.AddrAdd(l, &netlink.Addr{IPNet: ipnet(netip.MustParsePrefix(addr))})
}

// addOutside gives the host a veth into ext: host 198.51.100.1/30, ext
// 198.51.100.2/30 (TEST-NET-2). Returns ext's address.
func addOutside(t *testing.T, ext string) string {
	t.Helper()
	ns, closeNS, err := nsHandle(ext)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNS()
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	peer := &Endpoint{HostVeth: "esttestext0", Interface: "eth0", NetnsPath: ext}
	link, err := addVeth(h, peer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { delLink(h, "esttestext0") })
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet(netip.MustParsePrefix("198.51.100.1/30"))}); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	in, err := ns.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.AddrAdd(in, &netlink.Addr{IPNet: ipnet(netip.MustParsePrefix("198.51.100.2/30"))}); err != nil {
		t.Fatal(err)
	}
	if err := ns.LinkSetUp(in); err != nil {
		t.Fatal(err)
	}
	if err := loUp(ns); err != nil {
		t.Fatal(err)
	}
	return "198.51.100.2"
}
