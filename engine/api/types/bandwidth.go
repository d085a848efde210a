package types

// Bandwidth is estiba's extension of HostConfig (and of the body of
// POST /containers/{id}/update): rate limits of the container's network
// endpoints. Rates are tc(8)-style strings ("10mbit", "500k": bits/s;
// "1mbps": bytes/s); bursts are sizes in bytes ("32k"); empty means
// unlimited (rates) or automatic (bursts). Docker ignores these fields.
type Bandwidth struct {
	EstibaEgressRate   string `json:",omitempty"`
	EstibaIngressRate  string `json:",omitempty"`
	EstibaEgressBurst  string `json:",omitempty"`
	EstibaIngressBurst string `json:",omitempty"`
}

// IsZero reports whether no limit is asked.
func (b Bandwidth) IsZero() bool { return b == Bandwidth{} }

// ContainerUpdateRequest is POST /containers/{id}/update's body; estiba
// changes only the Bandwidth extension live.
type ContainerUpdateRequest struct {
	Resources
	Bandwidth
	RestartPolicy *RestartPolicy `json:",omitempty"`
}

// ContainerUpdateResponse is its answer.
type ContainerUpdateResponse struct {
	Warnings []string `json:"Warnings"`
}
