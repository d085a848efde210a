package network

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// shaper applies Bandwidth limits to an endpoint's host veth.
//
// Into the container is the host veth's egress: a tbf as its root qdisc
// shapes it (queues, so TCP sees delay, not loss).
// Out of the container is the host veth's ingress, where Linux can only
// police. This kernel has no act_police, and policing TCP undershoots its
// rate anyway; so a u32 match-all filter on the ingress qdisc redirects
// (act_mirred) every packet to a per-endpoint ifb device, whose egress a
// tbf shapes like the other direction.
//
// Per-tenant limits (a group sharing one rate) fit this layout: point the
// members' mirred actions at one tenant ifb with an htb root, one class
// per member under the tenant's class. Only classification by ingress
// device is missing (cls_bpf reading skb->ingress_ifindex).
type shaper struct {
	nl *netlink.Handle
}

const (
	minBurst = 16 << 10 // bytes: several MTU-sized packets
	// tbf's queue holds this much time at the shaped rate; beyond it drops.
	queueSeconds = 0.05
)

func validBandwidth(bw Bandwidth) error {
	for _, r := range []uint64{bw.IngressRate, bw.EgressRate} {
		if r != 0 && (r < 8000 || r > 100e9) {
			return fmt.Errorf("rate %d bit/s out of range (8kbit-100gbit): %w", r, ErrInvalid)
		}
	}
	for _, b := range []uint64{bw.IngressBurst, bw.EgressBurst} {
		if b > 1<<30 {
			return fmt.Errorf("burst %d bytes too large: %w", b, ErrInvalid)
		}
	}
	return nil
}

// apply makes the qdiscs match bw; unlimited directions lose theirs.
// Replacing a tbf changes it in place: the link stays up, packets queued
// in it are kept.
func (s *shaper) apply(hostVeth, ifb string, bw Bandwidth) error {
	link, err := s.nl.LinkByName(hostVeth)
	if err != nil {
		return fmt.Errorf("bandwidth: %s: %w", hostVeth, err)
	}
	idx := link.Attrs().Index
	if bw.IngressRate > 0 {
		if err := s.nl.QdiscReplace(tbf(idx, bw.IngressRate, bw.IngressBurst)); err != nil {
			return fmt.Errorf("bandwidth: tbf on %s: %w", hostVeth, err)
		}
	} else if err := s.delRoot(idx); err != nil {
		return err
	}
	if bw.EgressRate > 0 {
		return s.redirect(idx, ifb, bw)
	}
	if err := s.nl.QdiscDel(ingress(idx)); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("bandwidth: ingress qdisc of %s: %w", hostVeth, err)
	}
	return delLink(s.nl, ifb)
}

func (s *shaper) delRoot(idx int) error {
	qs, err := s.nl.QdiscList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx}})
	if err != nil {
		return fmt.Errorf("bandwidth: list qdiscs: %w", err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT && q.Type() == "tbf" {
			if err := s.nl.QdiscDel(q); err != nil {
				return fmt.Errorf("bandwidth: delete tbf: %w", err)
			}
		}
	}
	return nil
}

// redirect sets up (idempotently) ifb + ingress qdisc + mirred filter, then
// the tbf on the ifb. The ifb's tbf is in place before the filter sends it
// traffic.
func (s *shaper) redirect(idx int, ifb string, bw Bandwidth) error {
	err := s.nl.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: ifb, TxQLen: 1000}})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("bandwidth: ifb %s: %w", ifb, err)
	}
	il, err := s.nl.LinkByName(ifb)
	if err != nil {
		return fmt.Errorf("bandwidth: ifb %s: %w", ifb, err)
	}
	if err := s.nl.QdiscReplace(tbf(il.Attrs().Index, bw.EgressRate, bw.EgressBurst)); err != nil {
		return fmt.Errorf("bandwidth: tbf on %s: %w", ifb, err)
	}
	if err := s.nl.LinkSetUp(il); err != nil {
		return fmt.Errorf("bandwidth: ifb %s up: %w", ifb, err)
	}
	if err := s.nl.QdiscAdd(ingress(idx)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("bandwidth: ingress qdisc: %w", err)
	}
	parent := netlink.MakeHandle(0xffff, 0)
	fs, err := s.nl.FilterList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx}}, parent)
	if err != nil {
		return fmt.Errorf("bandwidth: list filters: %w", err)
	}
	if len(fs) > 0 {
		return nil // redirect in place; only the rate changed
	}
	f := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: parent, Priority: 1, Protocol: unix.ETH_P_ALL},
		Sel:         &netlink.TcU32Sel{Flags: u32Terminal, Nkeys: 1, Keys: []netlink.TcU32Key{{}}},
		Actions:     []netlink.Action{netlink.NewMirredAction(il.Attrs().Index)},
	}
	if err := s.nl.FilterAdd(f); err != nil {
		return fmt.Errorf("bandwidth: mirred filter: %w", err)
	}
	return nil
}

// u32Terminal is TC_U32_TERMINAL: the match ends classification.
const u32Terminal = 1

func ingress(idx int) *netlink.Ingress {
	return &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}}
}

// tbf builds a root token bucket for rate bits/s. The default burst is
// 10 ms at the rate: enough for the kernel timer granularity, small enough
// that the average stays at the rate over any second.
func tbf(idx int, rateBits, burst uint64) *netlink.Tbf {
	rate := rateBits / 8
	if burst == 0 {
		burst = max(rate/100, minBurst)
	}
	limit := uint64(float64(rate)*queueSeconds) + burst
	return &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       rate,
		Limit:      uint32(min(limit, 1<<31)),
		Buffer:     netlink.Xmittime(rate, uint32(burst)),
	}
}
