package network

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is our nftables table (family inet). Nothing else of ours
// touches the host's firewall.
const TableName = "estiba"

const (
	vethPrefix   = "estv" // host side of container veths
	ifbPrefix    = "esti" // per-endpoint ifb for egress shaping
	anchorPrefix = "estb" // port-less bridge holding a network's gateways

	ipsDstNat  = 0x20 // IPS_DST_NAT in ct status
	regConcat  = 9    // NFT_REG32_01: second 32-bit slot of register 1
	regConcat2 = 10   // NFT_REG32_02
	reg32x4    = 12   // NFT_REG32_04: first 32-bit slot of register 2
	reg32x5    = 13   // NFT_REG32_05
)

// firewall owns the table. Its map names are fixed: pub4 maps
// (l4proto . port) to (address . port) for ports published on every host
// address; pub4a maps (host address . l4proto . port) for ports published on
// one address. Lookups in a map are O(1), so 10,000 published ports cost one
// rule evaluation, not 10,000.
type firewall struct {
	mu    sync.Mutex // one batch at a time: a Conn is not safe for concurrent batches
	conn  *nftables.Conn
	table *nftables.Table
}

func newFirewall(name string) (*firewall, error) {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &firewall{conn: c, table: &nftables.Table{Name: name, Family: nftables.TableFamilyINet}}, nil
}

func (f *firewall) close() { f.conn.CloseLasting() }

func pubSets(table *nftables.Table) (*nftables.Set, *nftables.Set) {
	any := &nftables.Set{
		Table: table, Name: "pub4", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
	}
	one := &nftables.Set{
		Table: table, Name: "pub4a", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
	}
	return any, one
}

// pubSets6 are pub4 and pub4a for IPv6: pub6 maps (l4proto . port) to
// (address6 . port), pub6a is keyed by (host address6 . l4proto . port).
func pubSets6(table *nftables.Table) (*nftables.Set, *nftables.Set) {
	any := &nftables.Set{
		Table: table, Name: "pub6", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService),
	}
	one := &nftables.Set{
		Table: table, Name: "pub6a", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService),
	}
	return any, one
}

// pubMaps are the four port maps, in the order portElements fills them.
func pubMaps(table *nftables.Table) [4]*nftables.Set {
	any4, one4 := pubSets(table)
	any6, one6 := pubSets6(table)
	return [4]*nftables.Set{any4, one4, any6, one6}
}

// sync replaces the whole table with one built from nets and eps, in one
// transaction: packets see the old table or the new one, never a half.
// Adding the table first makes the delete valid when it does not exist yet.
func (f *firewall) sync(snapshot func() ([]*Network, []*Endpoint)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	nets, eps := snapshot()
	c := f.conn
	c.AddTable(f.table)
	c.DelTable(f.table)
	c.AddTable(f.table)
	maps := pubMaps(f.table)
	for _, m := range maps {
		if err := c.AddSet(m, nil); err != nil {
			return fmt.Errorf("nft set: %w", err)
		}
	}
	for _, e := range eps {
		if err := f.addPorts(e, maps); err != nil {
			return err
		}
	}
	f.chains(nets, maps)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft sync table: %w", err)
	}
	return nil
}

// remove deletes the table (tests, and a daemon told to clean up).
func (f *firewall) remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conn.AddTable(f.table)
	f.conn.DelTable(f.table)
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nft delete table: %w", err)
	}
	return nil
}

// setPorts adds (add=true) or removes the published ports of e.
func (f *firewall) setPorts(e *Endpoint, add bool) error {
	if len(e.Ports) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	maps := pubMaps(f.table)
	var err error
	if add {
		err = f.addPorts(e, maps)
	} else {
		for i, els := range portElements(e) {
			if err == nil && len(els) > 0 {
				err = f.conn.SetDeleteElements(maps[i], els)
			}
		}
	}
	if err == nil {
		err = f.conn.Flush()
	}
	if !add && errors.Is(err, unix.ENOENT) {
		// A table rebuild after the endpoint was forgotten already left
		// them out (the batch is all or nothing, so none remains).
		return nil
	}
	if err != nil {
		return fmt.Errorf("nft ports of %s: %w", e.ContainerID, err)
	}
	return nil
}

func (f *firewall) addPorts(e *Endpoint, maps [4]*nftables.Set) error {
	for i, els := range portElements(e) {
		if len(els) == 0 {
			continue
		}
		if err := f.conn.SetAddElements(maps[i], els); err != nil {
			return fmt.Errorf("nft ports: %w", err)
		}
	}
	return nil
}

// portElements encodes e's ports as elements of pub4, pub4a, pub6, pub6a.
// Concatenated fields are each padded to 4 bytes (32-bit registers), the
// layout nft uses. A port published without a host address goes to both
// families when the endpoint has IPv6 (Docker publishes on 0.0.0.0 and
// [::]); 0.0.0.0 is IPv4 only and [::] IPv6 only, as in Docker.
func portElements(e *Endpoint) (els [4][]nftables.SetElement) {
	ip := e.IP.As4()
	ip6 := e.IP6.As16()
	for _, p := range e.Ports {
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		key := []byte{proto, 0, 0, 0, byte(p.HostPort >> 8), byte(p.HostPort), 0, 0}
		cport := []byte{byte(p.ContainerPort >> 8), byte(p.ContainerPort), 0, 0}
		val := append(ip[:], cport...)
		val6 := append(ip6[:], cport...)
		h := p.HostIP
		switch {
		case !h.IsValid():
			els[0] = append(els[0], nftables.SetElement{Key: key, Val: val})
			if e.IP6.IsValid() {
				els[2] = append(els[2], nftables.SetElement{Key: key, Val: val6})
			}
		case h.Is4() && h.IsUnspecified():
			els[0] = append(els[0], nftables.SetElement{Key: key, Val: val})
		case h.Is4():
			h4 := h.As4()
			els[1] = append(els[1], nftables.SetElement{Key: append(h4[:], key...), Val: val})
		case !e.IP6.IsValid():
			// checkPorts refused it; a record from elsewhere adds nothing.
		case h.IsUnspecified():
			els[2] = append(els[2], nftables.SetElement{Key: key, Val: val6})
		default:
			h16 := h.As16()
			els[3] = append(els[3], nftables.SetElement{Key: append(h16[:], key...), Val: val6})
		}
	}
	return els
}

func (f *firewall) chain(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType) *nftables.Chain {
	return f.conn.AddChain(&nftables.Chain{Name: name, Table: f.table, Hooknum: hook, Priority: prio, Type: typ})
}

func (f *firewall) rule(ch *nftables.Chain, exprs ...[]expr.Any) {
	var all []expr.Any
	for _, e := range exprs {
		all = append(all, e...)
	}
	f.conn.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: all})
}

// chains adds every chain and rule. The order of rules in each chain is the
// policy; see the comments at each.
func (f *firewall) chains(nets []*Network, maps [4]*nftables.Set) {
	accept := verdict(expr.VerdictAccept)
	drop := verdict(expr.VerdictDrop)

	// Anti-spoofing, before conntrack: a packet from a container must carry
	// a source address routed back through the veth it came in on
	// (fib saddr . iif oif missing drop).
	raw := f.chain("raw", nftables.ChainHookPrerouting, nftables.ChainPriorityRaw, nftables.ChainTypeFilter)
	f.rule(raw, ifname(true, vethPrefix, true), fibSaddrIifMissing(), drop)

	// DNAT of published ports, for traffic from outside and from containers
	// (prerouting) and from the host itself (output), only when addressed to
	// a local address: a container dialing a remote host's port 80 must not
	// be redirected.
	pre := f.chain("dnat", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest, nftables.ChainTypeNAT)
	out := f.chain("dnat-local", nftables.ChainHookOutput, nftables.ChainPriorityNATDest, nftables.ChainTypeNAT)
	for _, ch := range []*nftables.Chain{pre, out} {
		f.rule(ch, nfproto(unix.NFPROTO_IPV4), fibDaddrLocal(), dnatOne(maps[1]))
		f.rule(ch, nfproto(unix.NFPROTO_IPV4), fibDaddrLocal(), dnatAny(maps[0]))
		// Not ::1: the relay serves it (see relays).
		f.rule(ch, nfproto(unix.NFPROTO_IPV6), ip6DaddrNot(netip.IPv6Loopback()), fibDaddrLocal(), dnatOne6(maps[3]))
		f.rule(ch, nfproto(unix.NFPROTO_IPV6), ip6DaddrNot(netip.IPv6Loopback()), fibDaddrLocal(), dnatAny6(maps[2]))
	}

	post := f.chain("snat", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, nftables.ChainTypeNAT)
	// The host's own 127.0.0.1 dialing a published port: the container
	// cannot answer 127.0.0.1 (its own loopback), so rewrite the source.
	// (route_localnet on the host veth lets such a packet be routed at all.)
	f.rule(post, nfproto(unix.NFPROTO_IPV4), ipSaddrIn(netip.MustParsePrefix("127.0.0.0/8")), ifname(false, vethPrefix, true), masq())
	// Hairpin: a container dialing a published port that leads back to a
	// container (perhaps itself: a packet with its own source address would
	// be dropped as martian) gets a host source address.
	f.rule(post, ifname(true, vethPrefix, true), ifname(false, vethPrefix, true), ctStatusDnat(), masq())
	for _, n := range nets {
		if n.Internal {
			continue
		}
		// Egress to anywhere but another container.
		f.rule(post, nfproto(unix.NFPROTO_IPV4), ipSaddrIn(n.Subnet), ifname(false, vethPrefix, false), masq())
		if n.Subnet6.IsValid() {
			f.rule(post, nfproto(unix.NFPROTO_IPV6), ip6SaddrIn(n.Subnet6), ifname(false, vethPrefix, false), masq())
		}
	}

	fwd := f.chain("forward", nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	f.rule(fwd, ctStateEstablished(), accept)
	// Published ports are reachable from everywhere, other networks included.
	f.rule(fwd, ifname(false, vethPrefix, true), ctStatusDnat(), accept)
	for _, n := range nets {
		// Within one network containers reach each other. Source addresses
		// are trustworthy: the raw chain dropped spoofed ones.
		f.rule(fwd, ifname(true, vethPrefix, true), ifname(false, vethPrefix, true), nfproto(unix.NFPROTO_IPV4), ipSaddrIn(n.Subnet), ipDaddrIn(n.Subnet), accept)
		if n.Subnet6.IsValid() {
			f.rule(fwd, ifname(true, vethPrefix, true), ifname(false, vethPrefix, true), nfproto(unix.NFPROTO_IPV6), ip6SaddrIn(n.Subnet6), ip6DaddrIn(n.Subnet6), accept)
		}
	}
	// Nothing else reaches a container: not another network, not the LAN.
	f.rule(fwd, ifname(false, vethPrefix, true), drop)
	// Internal networks: whatever was not accepted above (own subnet,
	// established) does not leave.
	for _, n := range nets {
		if !n.Internal {
			continue
		}
		f.rule(fwd, ifname(true, vethPrefix, true), nfproto(unix.NFPROTO_IPV4), ipSaddrIn(n.Subnet), drop)
		if n.Subnet6.IsValid() {
			f.rule(fwd, ifname(true, vethPrefix, true), nfproto(unix.NFPROTO_IPV6), ip6SaddrIn(n.Subnet6), drop)
		}
	}

	in := f.chain("input", nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	f.rule(in, ifname(true, vethPrefix, true), ctStateEstablished(), accept)
	// IPv6 neighbour discovery with the host side of the veth.
	f.rule(in, ifname(true, vethPrefix, true), nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), icmp6ND(), accept)
	for _, n := range nets {
		if !n.DNS {
			continue
		}
		for _, p := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			f.rule(in, ifname(true, vethPrefix, true), nfproto(unix.NFPROTO_IPV4), ipSaddrIn(n.Subnet),
				ipDaddrIn(netip.PrefixFrom(n.Gateway, 32)), l4proto(p), dport(53), accept)
			if n.Subnet6.IsValid() {
				f.rule(in, ifname(true, vethPrefix, true), nfproto(unix.NFPROTO_IPV6), ip6SaddrIn(n.Subnet6),
					ip6DaddrIn(netip.PrefixFrom(n.Gateway6, 128)), l4proto(p), dport(53), accept)
			}
		}
	}
	// Everything else from a container to the host is dropped.
	f.rule(in, ifname(true, vethPrefix, true), drop)
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func masq() []expr.Any { return []expr.Any{&expr.Masq{}} }

// ifname matches iifname (in) or oifname against a prefix ("estv*"); the
// comparison covers only the prefix's bytes, as nft's wildcard does.
func ifname(in bool, prefix string, eq bool) []expr.Any {
	key := expr.MetaKeyOIFNAME
	if in {
		key = expr.MetaKeyIIFNAME
	}
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: []byte(prefix)},
	}
}

func nfproto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func dport(p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
	}
}

func icmp6ND() []expr.Any {
	// Types 135 and 136: neighbour solicitation and advertisement. Router
	// advertisements from a container are dropped (and ignored anyway:
	// accept_ra=0 on the host veth).
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{135}, ToData: []byte{136}},
	}
}

func prefixMatch(off, size uint32, p netip.Prefix) []expr.Any {
	p = p.Masked()
	mask := make([]byte, size)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
	}
}

func ip6DaddrNot(a netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: a.AsSlice()},
	}
}

func ipSaddrIn(p netip.Prefix) []expr.Any  { return prefixMatch(12, 4, p) }
func ipDaddrIn(p netip.Prefix) []expr.Any  { return prefixMatch(16, 4, p) }
func ip6SaddrIn(p netip.Prefix) []expr.Any { return prefixMatch(8, 16, p) }
func ip6DaddrIn(p netip.Prefix) []expr.Any { return prefixMatch(24, 16, p) }

func ctStateEstablished() []expr.Any {
	return ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
}

func ctStatusDnat() []expr.Any { return ctBits(expr.CtKeySTATUS, ipsDstNat) }

func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func fibSaddrIifMissing() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, ResultOIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
	}
}

func fibDaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func dnatAny(m *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Payload{DestRegister: regConcat, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		dnatTo(),
	}
}

func dnatOne(m *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regConcat},
		&expr.Payload{DestRegister: regConcat2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		dnatTo(),
	}
}

func dnatAny6(m *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Payload{DestRegister: regConcat, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		dnatTo6(),
	}
}

// dnatOne6: the 16-byte address fills register 1 (32-bit slots 0-3), so
// the protocol and port follow in slots 4 and 5.
func dnatOne6(m *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32x4},
		&expr.Payload{DestRegister: reg32x5, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		dnatTo6(),
	}
}

// dnatTo rewrites to the address in register 1 and the port right after it.
func dnatTo() expr.Any {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
		RegAddrMin: 1, RegProtoMin: regConcat, Specified: true}
}

// dnatTo6 rewrites to the IPv6 address in register 1 and the port after
// it, in the first 32-bit slot of register 2.
func dnatTo6() expr.Any {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6,
		RegAddrMin: 1, RegProtoMin: reg32x4, Specified: true}
}
