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
