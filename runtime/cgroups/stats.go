package cgroups

func (m *manager) Stats() (*Stats, error) {
	return nil, ErrNotImplemented
}
