package network

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServers runs one embedded DNS server per user-defined network, bound
// to the network's gateway address, port 53, UDP and TCP, in the daemon's
// own namespace (and on the IPv6 gateway too). A server answers A/AAAA for names (container name,
// aliases, short ID) of endpoints on ITS network only, so a container
// cannot learn the addresses of another network's containers; every other
// name is forwarded to the host's resolvers.
type dnsServers struct {
	m         *Manager
	upstreams func() []string
	mu        sync.Mutex
	servers   map[string]*dnsServer // by network ID
}

type dnsServer struct {
	udp  []net.PacketConn // on the IPv4 gateway, and the IPv6 one if any
	tcp  []net.Listener
	done sync.WaitGroup
	// busy bounds the queries in flight (forwarding can take seconds):
	// a container flooding its DNS server gets drops, not a daemon full of
	// goroutines.
	busy chan struct{}
}

// maxInflight is the bound on queries in flight per network's server.
const maxInflight = 256

func newDNSServers(m *Manager, resolvConf string, upstreams []string) *dnsServers {
	up := func() []string { return upstreams }
	if len(upstreams) == 0 {
		up = func() []string {
			var out []string
			for _, a := range readResolvConf(resolvConf).nameservers {
				out = append(out, net.JoinHostPort(a.String(), "53"))
			}
			return out
		}
	}
	return &dnsServers{m: m, upstreams: up, servers: map[string]*dnsServer{}}
}

func (d *dnsServers) start(n *Network) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.servers[n.ID]; ok {
		return nil
	}
	s := &dnsServer{busy: make(chan struct{}, maxInflight)}
	for _, gw := range []netip.Addr{n.Gateway, n.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		addr := net.JoinHostPort(gw.String(), "53")
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			s.close()
			return fmt.Errorf("dns %s: %w", addr, err)
		}
		s.udp = append(s.udp, udp)
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			s.close()
			return fmt.Errorf("dns %s: %w", addr, err)
		}
		s.tcp = append(s.tcp, tcp)
	}
	for _, c := range s.udp {
		s.done.Add(1)
		go func() { defer s.done.Done(); d.serveUDP(n.ID, s, c) }()
	}
	for _, l := range s.tcp {
		s.done.Add(1)
		go func() { defer s.done.Done(); d.serveTCP(n.ID, s, l) }()
	}
	d.servers[n.ID] = s
	return nil
}

func (d *dnsServers) stop(id string) {
	d.mu.Lock()
	s, ok := d.servers[id]
	delete(d.servers, id)
	d.mu.Unlock()
	if ok {
		s.close()
		s.done.Wait()
	}
}

func (s *dnsServer) close() {
	for _, c := range s.udp {
		c.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
}

func (d *dnsServers) stopAll() {
	d.mu.Lock()
	ids := make([]string, 0, len(d.servers))
	for id := range d.servers {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		d.stop(id)
	}
}

func (d *dnsServers) serveUDP(netID string, s *dnsServer, c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case s.busy <- struct{}{}:
		default:
			continue // full: drop, the client retries
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			defer func() { <-s.busy }()
			if resp := d.answer(netID, q, "udp"); resp != nil {
				c.WriteTo(resp, from)
			}
		}()
	}
}

func (d *dnsServers) serveTCP(netID string, s *dnsServer, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		select {
		case s.busy <- struct{}{}:
		default:
			c.Close()
			continue
		}
		go func() {
			defer func() { <-s.busy }()
			defer c.Close()
			for {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var lenb [2]byte
				if _, err := io.ReadFull(c, lenb[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(lenb[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				resp := d.answer(netID, q, "tcp")
				if resp == nil {
					return
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
				if _, err := c.Write(append(out, resp...)); err != nil {
					return
				}
			}
		}()
	}
}

// answer builds the response to one query, or nil to drop it.
func (d *dnsServers) answer(netID string, q []byte, proto string) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil || h.Response {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return reply(h, nil, nil, dnsmessage.RCodeFormatError)
	}
	qq := qs[0]
	name := strings.TrimSuffix(strings.ToLower(qq.Name.String()), ".")
	addrs, found := d.m.lookup(netID, name)
	if !found {
		if resp := d.forward(q, proto); resp != nil {
			return resp
		}
		return reply(h, &qq, nil, dnsmessage.RCodeServerFailure)
	}
	var ans []netip.Addr
	for _, a := range addrs {
		if (qq.Type == dnsmessage.TypeA && a.Is4()) || (qq.Type == dnsmessage.TypeAAAA && a.Is6()) {
			ans = append(ans, a)
		}
	}
	return reply(h, &qq, ans, dnsmessage.RCodeSuccess)
}

func reply(h dnsmessage.Header, q *dnsmessage.Question, addrs []netip.Addr, rc dnsmessage.RCode) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: rc == dnsmessage.RCodeSuccess,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rc})
	b.EnableCompression()
	b.StartQuestions()
	if q != nil {
		b.Question(*q)
	}
	b.StartAnswers()
	for _, a := range addrs {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 600}
		if a.Is4() {
			b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		} else {
			b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// forward relays the query unchanged to the first upstream that answers.
func (d *dnsServers) forward(q []byte, proto string) []byte {
	for _, up := range d.upstreams() {
		c, err := net.DialTimeout(proto, up, 2*time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		resp, err := exchange(c, q, proto)
		c.Close()
		if err == nil {
			return resp
		}
	}
	return nil
}

func exchange(c net.Conn, q []byte, proto string) ([]byte, error) {
	if proto == "udp" {
		if _, err := c.Write(q); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		return buf[:n], err
	}
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
		return nil, err
	}
	var lenb [2]byte
	if _, err := io.ReadFull(c, lenb[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(lenb[:]))
	_, err := io.ReadFull(c, resp)
	return resp, err
}

// lookup finds the addresses of a name among the endpoints of one network.
func (m *Manager) lookup(netID, name string) ([]netip.Addr, bool) {
	if name == "" {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.Addr
	found := false
	for _, e := range m.eps {
		if e.Network != netID || !e.answers(name) {
			continue
		}
		found = true
		out = append(out, e.IP)
		if e.IP6.IsValid() {
			out = append(out, e.IP6)
		}
	}
	return out, found
}

func (e *Endpoint) answers(name string) bool {
	if strings.EqualFold(e.Name, name) || (len(name) == 12 && strings.HasPrefix(e.ContainerID, name)) {
		return true
	}
	for _, a := range e.Aliases {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

type resolvConf struct {
	nameservers []netip.Addr
	search      []string
	options     []string
}

func readResolvConf(path string) resolvConf {
	var rc resolvConf
	f, err := os.Open(path)
	if err != nil {
		return rc
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		switch fs[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(fs[1]); err == nil {
				rc.nameservers = append(rc.nameservers, a)
			}
		case "search", "domain":
			rc.search = fs[1:]
		case "options":
			rc.options = append(rc.options, fs[1:]...)
		}
	}
	return rc
}

// Files are the contents of /etc/hosts, /etc/resolv.conf and /etc/hostname
// for a container; the engine writes them and bind-mounts them.
type Files struct {
	Hosts, ResolvConf, Hostname []byte
}

// ContainerFiles renders the files for a container from its endpoints.
// A container on a user-defined network uses that network's DNS server
// (its gateway); otherwise it gets the host's resolvers, minus loopback
// ones it could not reach from its namespace.
func (m *Manager) ContainerFiles(containerID, hostname string) (Files, error) {
	if hostname == "" {
		return Files{}, fmt.Errorf("hostname required: %w", ErrInvalid)
	}
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	var dnsServer netip.Addr
	for _, e := range m.Endpoints("") {
		if e.ContainerID != containerID {
			continue
		}
		fmt.Fprintf(&hosts, "%s\t%s\n", e.IP, hostname)
		if e.IP6.IsValid() {
			fmt.Fprintf(&hosts, "%s\t%s\n", e.IP6, hostname)
		}
		if n, err := m.Inspect(e.Network); err == nil && n.DNS && !m.cfg.NoDNS && !dnsServer.IsValid() {
			dnsServer = n.Gateway
		}
	}
	host := readResolvConf(m.cfg.ResolvConf)
	var rc strings.Builder
	if dnsServer.IsValid() {
		fmt.Fprintf(&rc, "nameserver %s\n", dnsServer)
	} else {
		for _, a := range host.nameservers {
			if !a.IsLoopback() {
				fmt.Fprintf(&rc, "nameserver %s\n", a)
			}
		}
	}
	if len(host.search) > 0 {
		fmt.Fprintf(&rc, "search %s\n", strings.Join(host.search, " "))
	}
	if len(host.options) > 0 {
		fmt.Fprintf(&rc, "options %s\n", strings.Join(host.options, " "))
	}
	return Files{Hosts: []byte(hosts.String()), ResolvConf: []byte(rc.String()), Hostname: []byte(hostname + "\n")}, nil
}
