package network

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestPublishedPorts: a port published by a container is reachable from the
// host's 127.0.0.1, from another container on its network, from a container
// on another network, and from the container itself (hairpin); a port bound
// to 127.0.0.1 only is not reachable via other addresses.
func TestPublishedPorts(t *testing.T) {
	m, _ := newTestManager(t)
	mustNet(t, m, "pa", "10.234.0.0/24", false)
	mustNet(t, m, "pb", "10.235.0.0/24", false)
	ns1, ns2, ns3 := newNetns(t, "p1"), newNetns(t, "p2"), newNetns(t, "p3")
	ports, err := ParsePorts("18080:8080")
	if err != nil {
		t.Fatal(err)
	}
	lo, err := ParsePorts("127.0.0.1:18081:8080")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := ParsePorts("18082:8082/udp")
	if err != nil {
		t.Fatal(err)
	}
	e1 := mustAttach(t, m, "p1", ns1, "pa", AttachOptions{Ports: append(append(ports, lo...), udp...)})
	e2 := mustAttach(t, m, "p2", ns2, "pa", AttachOptions{})
	e3 := mustAttach(t, m, "p3", ns3, "pb", AttachOptions{})
	serveEcho(t, ns1, ":8080", "p1")
	serveUDPEcho(t, ns1, ":8082")
	ext := newNetns(t, "pext")
	addOutside(t, ext)

	cases := []struct {
		name, ns, addr string
		ok             bool
	}{
		{"host loopback", "", "127.0.0.1:18080", true},
		{"host loopback, bound port", "", "127.0.0.1:18081", true},
		{"host gateway address", "", e1.Gateway.String() + ":18080", true},
		{"bound port via other address", "", e1.Gateway.String() + ":18081", false},
		{"same network via host address", ns2, e2.Gateway.String() + ":18080", true},
		{"other network via host address", ns3, e3.Gateway.String() + ":18080", true},
		{"itself via host address", ns1, e1.Gateway.String() + ":18080", true},
		{"other network direct", ns3, e1.IP.String() + ":8080", false},
		{"outside via host address", ext, "198.51.100.1:18080", true},
		{"outside, port bound to 127.0.0.1", ext, "198.51.100.1:18081", false},
	}
	for _, c := range cases {
		timeout := 2 * time.Second
		if !c.ok {
			timeout = 300 * time.Millisecond
		}
		got, err := dialIn(c.ns, c.addr, timeout)
		if c.ok && (err != nil || !strings.Contains(got, "hello from p1")) {
			t.Errorf("%s (%s): %q %v", c.name, c.addr, got, err)
		}
		if !c.ok && err == nil {
			t.Errorf("%s (%s): reached: %q", c.name, c.addr, got)
		}
	}
	if got, err := udpQuery("", "127.0.0.1:18082"); err != nil || got != "echo:ping" {
		t.Errorf("udp published port: %q %v", got, err)
	}
	// The port is taken: a second container cannot publish it.
	if _, err := m.Attach(context.Background(), "p4", newNetns(t, "p4"), "pb", AttachOptions{Ports: ports}); err == nil {
		t.Error("second publisher of 18080 accepted")
	}
	// Detach removes exactly its elements: the port is gone.
	if err := m.Detach(context.Background(), "p1", "pa"); err != nil {
		t.Fatal(err)
	}
	if _, err := dialIn("", "127.0.0.1:18080", 300*time.Millisecond); err == nil {
		t.Error("port still published after detach")
	}
	// Removing elements that are gone already is no error.
	if err := m.fw.setPorts(e1, false); err != nil {
		t.Errorf("second removal of ports: %v", err)
	}
}

func serveUDPEcho(t *testing.T, ns, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := InNetns(ns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
}

func udpQuery(ns, addr string) (string, error) {
	var out string
	do := func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		out = string(buf[:n])
		return err
	}
	if ns == "" {
		return out, do()
	}
	return out, InNetns(ns, do)
}
