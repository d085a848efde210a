package network

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// shaper applies Bandwidth limits (tc.go).
type shaper struct {
	nl *netlink.Handle
}

func validBandwidth(bw Bandwidth) error { return nil }

func (s *shaper) apply(hostVeth, ifb string, bw Bandwidth) error {
	if bw != (Bandwidth{}) {
		return fmt.Errorf("bandwidth limits: not built yet: %w", ErrInvalid)
	}
	return nil
}
