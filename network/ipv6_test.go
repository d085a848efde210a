package network

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
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
	var got string
	for i := 0; i < 20; i++ { // neighbour discovery may need a moment
		if got, err = dialIn(ns1, net.JoinHostPort(e2.IP6.String(), "8080"), time.Second); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(got, "hello from s2 to ["+e1.IP6.String()+"]") {
		t.Fatalf("v6 s1 -> s2: %q %v", got, err)
	}
	_, err = m.Attach(context.Background(), "s3", newNetns(t, "s3"), "six", AttachOptions{IP6: netip.MustParseAddr("fd00:e5:1::99")})
	if err == nil {
		t.Fatal("duplicate static IPv6 accepted")
	}
}
