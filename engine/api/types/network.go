package types

// NetworkResource is Docker's network object (GET /networks, inspect).
type NetworkResource struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    string                      `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	IPAM       IPAM                        `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	ConfigOnly bool                        `json:"ConfigOnly"`
	Containers map[string]EndpointResource `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`
}

// IPAM is a network's address configuration.
type IPAM struct {
	Driver  string            `json:"Driver"`
	Options map[string]string `json:"Options"`
	Config  []IPAMConfig      `json:"Config"`
}

// IPAMConfig is one subnet of a network.
type IPAMConfig struct {
	Subnet  string `json:"Subnet,omitempty"`
	IPRange string `json:"IPRange,omitempty"`
	Gateway string `json:"Gateway,omitempty"`
}

// EndpointResource is one container in a network's inspect.
type EndpointResource struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// NetworkCreateRequest is POST /networks/create's body.
type NetworkCreateRequest struct {
	Name           string            `json:"Name"`
	CheckDuplicate bool              `json:"CheckDuplicate"`
	Driver         string            `json:"Driver"`
	Scope          string            `json:"Scope"`
	Internal       bool              `json:"Internal"`
	Attachable     bool              `json:"Attachable"`
	Ingress        bool              `json:"Ingress"`
	EnableIPv6     *bool             `json:"EnableIPv6"`
	IPAM           *IPAM             `json:"IPAM"`
	Options        map[string]string `json:"Options"`
	Labels         map[string]string `json:"Labels"`
}

// NetworkCreateResponse is POST /networks/create's answer.
type NetworkCreateResponse struct {
	ID      string `json:"Id"`
	Warning string `json:"Warning"`
}

// EndpointIPAMConfig asks for static addresses.
type EndpointIPAMConfig struct {
	IPv4Address string `json:"IPv4Address,omitempty"`
	IPv6Address string `json:"IPv6Address,omitempty"`
}

// EndpointSettings is the per-network part of connect.
type EndpointSettings struct {
	IPAMConfig *EndpointIPAMConfig `json:"IPAMConfig"`
	Aliases    []string            `json:"Aliases"`
	MacAddress string              `json:"MacAddress"`
}

// NetworkConnectRequest is POST /networks/{id}/connect's body.
type NetworkConnectRequest struct {
	Container      string            `json:"Container"`
	EndpointConfig *EndpointSettings `json:"EndpointConfig"`
}

// NetworkDisconnectRequest is POST /networks/{id}/disconnect's body.
type NetworkDisconnectRequest struct {
	Container string `json:"Container"`
	Force     bool   `json:"Force"`
}

// NetworkPruneReport is POST /networks/prune's answer.
type NetworkPruneReport struct {
	NetworksDeleted []string `json:"NetworksDeleted"`
}
