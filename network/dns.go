package network

type dnsServers struct{}

func newDNSServers(m *Manager, resolvConf string) *dnsServers { return &dnsServers{} }
func (d *dnsServers) start(n *Network) error                  { return nil }
func (d *dnsServers) stop(id string)                          {}
func (d *dnsServers) stopAll()                                {}
