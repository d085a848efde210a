package netsvc

import (
	"errors"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

func TestNetworkConfig(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		req  types.NetworkCreateRequest
		want string // subnet when valid
		ok   bool
	}{
		{"plain", types.NetworkCreateRequest{Name: "a", Driver: "bridge"}, "invalid Prefix", true},
		{"subnet", types.NetworkCreateRequest{Name: "a", IPAM: &types.IPAM{Config: []types.IPAMConfig{{Subnet: "10.9.0.0/24", Gateway: "10.9.0.1"}}}}, "10.9.0.0/24", true},
		{"no name", types.NetworkCreateRequest{}, "", false},
		{"overlay", types.NetworkCreateRequest{Name: "a", Driver: "overlay"}, "", false},
		{"options", types.NetworkCreateRequest{Name: "a", Options: map[string]string{"mtu": "9000"}}, "", false},
		{"bad subnet", types.NetworkCreateRequest{Name: "a", IPAM: &types.IPAM{Config: []types.IPAMConfig{{Subnet: "10.9.0.0"}}}}, "", false},
		{"gw outside", types.NetworkCreateRequest{Name: "a", IPAM: &types.IPAM{Config: []types.IPAMConfig{{Subnet: "10.9.0.0/24", Gateway: "10.8.0.1"}}}}, "", false},
		{"two v4", types.NetworkCreateRequest{Name: "a", IPAM: &types.IPAM{Config: []types.IPAMConfig{{Subnet: "10.9.0.0/24"}, {Subnet: "10.8.0.0/24"}}}}, "", false},
		{"ipv6 without subnet", types.NetworkCreateRequest{Name: "a", EnableIPv6: &yes}, "", false},
		{"v6 subnet without ipv6", types.NetworkCreateRequest{Name: "a", IPAM: &types.IPAM{Config: []types.IPAMConfig{{Subnet: "fd00:1::/64"}}}}, "", false},
		{"ipv6", types.NetworkCreateRequest{Name: "a", EnableIPv6: &yes, IPAM: &types.IPAM{Config: []types.IPAMConfig{{Subnet: "fd00:1::/64"}}}}, "invalid Prefix", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := networkConfig(&tc.req)
			if !tc.ok {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("err %v, want invalid", err)
				}
				return
			}
			if err != nil || cfg.Subnet.String() != tc.want {
				t.Fatalf("%+v %v", cfg, err)
			}
		})
	}
}

func TestParseBandwidth(t *testing.T) {
	for _, tc := range []struct {
		in      types.Bandwidth
		egress  uint64
		ingress uint64
		burst   uint64 // egress burst
		ok      bool
	}{
		{types.Bandwidth{}, 0, 0, 0, true},
		{types.Bandwidth{EstibaEgressRate: "10mbit", EstibaIngressRate: "500k"}, 10e6, 500e3, 0, true},
		{types.Bandwidth{EstibaEgressRate: "1mbps", EstibaEgressBurst: "32k"}, 8e6, 0, 32 << 10, true},
		{types.Bandwidth{EstibaEgressRate: "fast"}, 0, 0, 0, false},
		{types.Bandwidth{EstibaIngressRate: "-1mbit"}, 0, 0, 0, false},
		{types.Bandwidth{EstibaEgressBurst: "32k"}, 0, 0, 0, false},
		{types.Bandwidth{EstibaEgressRate: "1mbit", EstibaEgressBurst: "lots"}, 0, 0, 0, false},
	} {
		bw, err := parseBandwidth(tc.in)
		if !tc.ok {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("%+v: err %v, want invalid", tc.in, err)
			}
			continue
		}
		if err != nil || bw.EgressRate != tc.egress || bw.IngressRate != tc.ingress || bw.EgressBurst != tc.burst {
			t.Errorf("%+v: %+v %v", tc.in, bw, err)
		}
	}
}
