package network

import (
	"fmt"
	"net/netip"
)

// pool hands out addresses of one subnet. It is rebuilt from the stored
// endpoints at start, so it holds no state of its own on disk.
// Not safe for concurrent use: the Manager's lock guards it.
type pool struct {
	subnet  netip.Prefix
	gateway netip.Addr
	used    map[netip.Addr]bool
	next    netip.Addr // where the next scan starts, so release+alloc does not reuse at once
}

func newPool(subnet netip.Prefix, gateway netip.Addr) *pool {
	return &pool{subnet: subnet.Masked(), gateway: gateway, used: map[netip.Addr]bool{}}
}

// reserved reports addresses never given to a container: the network and
// broadcast addresses (IPv4) and the gateway. For IPv6 only the subnet-router
// anycast (all-zero host part) and the gateway are reserved.
func (p *pool) reserved(a netip.Addr) bool {
	if a == p.gateway || a == p.subnet.Addr() {
		return true
	}
	return a.Is4() && a == lastAddr(p.subnet)
}

// check validates a static request.
func (p *pool) check(a netip.Addr) error {
	switch {
	case !p.subnet.Contains(a):
		return fmt.Errorf("address %s not in subnet %s: %w", a, p.subnet, ErrInvalid)
	case p.reserved(a):
		return fmt.Errorf("address %s is the network, broadcast or gateway address of %s: %w", a, p.subnet, ErrInvalid)
	case p.used[a]:
		return fmt.Errorf("address %s already in use: %w", a, ErrConflict)
	}
	return nil
}

// take marks a (already checked) as used.
func (p *pool) take(a netip.Addr) { p.used[a] = true }

func (p *pool) release(a netip.Addr) { delete(p.used, a) }

// allocate returns the next free address after the last one handed out,
// wrapping around once. IPv6 subnets are scanned the same way; the scan ends
// at the first free address, so it is short unless the subnet is nearly full.
func (p *pool) allocate() (netip.Addr, error) {
	start := p.next
	if !start.IsValid() || !p.subnet.Contains(start) {
		start = p.subnet.Addr().Next()
	}
	a := start
	for {
		if !p.reserved(a) && !p.used[a] {
			p.used[a] = true
			p.next = a.Next()
			return a, nil
		}
		a = a.Next()
		if !a.IsValid() || !p.subnet.Contains(a) {
			a = p.subnet.Addr()
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("subnet %s is full: %w", p.subnet, ErrConflict)
		}
	}
}

// lastAddr is the highest address of a prefix (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// overlaps reports whether two prefixes share any address.
func overlaps(a, b netip.Prefix) bool {
	return a.Overlaps(b)
}
