package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// relays forward TCP connections to the host's [::1] on published ports.
//
// Why a relay at all: IPv4 lets DNAT send 127.0.0.1 traffic out of a veth
// (route_localnet), IPv6 has no such switch. A DNATed connection from ::1
// leaves fine (masqueraded), but its replies, un-NATed back to ::1 as
// they arrive on the veth, fail the kernel's strict input route lookup for
// loopback destinations and are dropped. So, like docker-proxy but inside
// the daemon (goroutines, no process per port), a listener on [::1]:port
// relays to the container; the DNAT rules skip ::1 to let it. It also
// makes ports of IPv4-only containers reachable on ::1, as Docker's are.
// UDP is not relayed. The relays live as long as the daemon: New starts
// them for the stored endpoints.
type relays struct {
	mu sync.Mutex
	ls map[string][]net.Listener // by endpoint key
	wg sync.WaitGroup
}

// relayed reports whether p is reachable on [::1] through a relay.
func relayed(p PortMapping) bool {
	return p.Proto == "tcp" && (!p.HostIP.IsValid() || (p.HostIP.Is6() && (p.HostIP.IsUnspecified() || p.HostIP.IsLoopback())))
}

// start listens for every relayed port of e. A host without IPv6 gets no
// relays; a port some host process holds on ::1 is an error.
func (r *relays) start(e *Endpoint) error {
	var ls []net.Listener
	target := e.IP
	if e.IP6.IsValid() {
		target = e.IP6
	}
	for _, p := range e.Ports {
		if !relayed(p) {
			continue
		}
		l, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(int(p.HostPort))))
		if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) {
			continue // no ::1 here
		}
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("relay [::1]:%d: %w", p.HostPort, err)
		}
		ls = append(ls, l)
		dst := netip.AddrPortFrom(target, p.ContainerPort).String()
		r.wg.Add(1)
		go func() { defer r.wg.Done(); serveRelay(l, dst) }()
	}
	if len(ls) > 0 {
		r.mu.Lock()
		r.ls[epKey(e.Network, e.ContainerID)] = ls
		r.mu.Unlock()
	}
	return nil
}

func (r *relays) stop(e *Endpoint) {
	r.mu.Lock()
	ls := r.ls[epKey(e.Network, e.ContainerID)]
	delete(r.ls, epKey(e.Network, e.ContainerID))
	r.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

func (r *relays) stopAll() {
	r.mu.Lock()
	all := r.ls
	r.ls = map[string][]net.Listener{}
	r.mu.Unlock()
	for _, ls := range all {
		for _, l := range ls {
			l.Close()
		}
	}
	r.wg.Wait()
}

func serveRelay(l net.Listener, dst string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go relayConn(c.(*net.TCPConn), dst)
	}
}

// relayConn copies both ways, passing half-closes on.
func relayConn(c *net.TCPConn, dst string) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", dst, 5*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	up := u.(*net.TCPConn)
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		up.CloseWrite()
		close(done)
	}()
	io.Copy(c, up)
	c.CloseWrite()
	<-done
}
