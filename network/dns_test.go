package network

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"golang.org/x/net/dns/dnsmessage"
)

// TestDNS: names and aliases resolve on their own network only, over UDP
// and TCP; other names go to the upstream (a fake one on loopback).
func TestDNS(t *testing.T) {
	testutil.RequiresRoot(t)
	up := fakeUpstream(t)
	m := newManagerWith(t, Config{Upstreams: []string{up}})
	mustNet(t, m, "da", "10.237.0.0/24", false)
	mustNet(t, m, "db", "10.238.0.0/24", false)
	ns1, ns2, ns3 := newNetns(t, "d1"), newNetns(t, "d2"), newNetns(t, "d3")
	e1 := mustAttach(t, m, "d1", ns1, "da", AttachOptions{Name: "client"})
	e2 := mustAttach(t, m, "d2", ns2, "da", AttachOptions{Name: "web", Aliases: []string{"www"}})
	e3 := mustAttach(t, m, "d3", ns3, "db", AttachOptions{Name: "other"})
	gw := e1.Gateway.String() + ":53"
	cases := []struct {
		ns, server, name, proto, want string
	}{
		{ns1, gw, "web", "udp", e2.IP.String()},
		{ns1, gw, "WWW.", "tcp", e2.IP.String()},
		{ns1, gw, "other", "udp", "192.0.2.99"}, // not on da: forwarded
		{ns3, e3.Gateway.String() + ":53", "web", "udp", "192.0.2.99"},
		{ns1, gw, "example.org", "udp", "192.0.2.99"},
	}
	for _, c := range cases {
		got, err := queryA(c.ns, c.server, c.name, c.proto)
		if err != nil || got != c.want {
			t.Errorf("%s %s via %s: %q %v, want %s", c.name, c.proto, c.server, got, err, c.want)
		}
	}
	// Another network's DNS server is not reachable.
	if _, err := queryA(ns3, gw, "web", "tcp"); err == nil {
		t.Error("container queried another network's DNS server")
	}
	f, err := m.ContainerFiles("d1", "client")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.ResolvConf), "nameserver "+e1.Gateway.String()) ||
		!strings.Contains(string(f.Hosts), e1.IP.String()+"\tclient") || string(f.Hostname) != "client\n" {
		t.Errorf("files: %q %q %q", f.ResolvConf, f.Hosts, f.Hostname)
	}
	_ = context.Background()
}

func newManagerWith(t *testing.T, cfg Config) *Manager {
	t.Helper()
	testutil.CheckNoNetLeaks(t, "est")
	cfg.Store = FileStore{Dir: filepath.Join(t.TempDir(), "state")}
	cfg.DefaultSubnet = netip.MustParsePrefix("10.230.0.0/24")
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = writeResolvConf(t, "nameserver 127.0.0.53\nsearch example.test\n")
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Teardown(context.Background()); err != nil {
			t.Errorf("Teardown: %v", err)
		}
		m.Close()
	})
	return m
}

// fakeUpstream answers every A query with 192.0.2.99, on a loopback port.
func fakeUpstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			pc.WriteTo(reply(h, &q, []netip.Addr{netip.MustParseAddr("192.0.2.99")}, dnsmessage.RCodeSuccess), from)
		}
	}()
	return pc.LocalAddr().String()
}

// queryA asks server for name's A record from inside ns.
func queryA(ns, server, name, proto string) (string, error) {
	return query(ns, server, name, proto, dnsmessage.TypeA)
}

// query asks server for name's record of type typ (A or AAAA) from inside
// ns and returns the last address answered.
func query(ns, server, name, proto string, typ dnsmessage.Type) (string, error) {
	var out string
	err := InNetns(ns, func() error {
		q := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true},
			Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(strings.TrimSuffix(name, ".") + "."), Type: typ, Class: dnsmessage.ClassINET}}}
		b, err := q.Pack()
		if err != nil {
			return err
		}
		c, err := net.DialTimeout(proto, server, 500*time.Millisecond)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		resp, err := exchange(c, b, proto)
		if err != nil {
			return err
		}
		var r dnsmessage.Message
		if err := r.Unpack(resp); err != nil {
			return err
		}
		for _, a := range r.Answers {
			switch r := a.Body.(type) {
			case *dnsmessage.AResource:
				out = netip.AddrFrom4(r.A).String()
			case *dnsmessage.AAAAResource:
				out = netip.AddrFrom16(r.AAAA).String()
			}
		}
		return nil
	})
	return out, err
}
