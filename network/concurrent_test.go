package network

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentAttach: parallel attaches (with ports) and a network
// created meanwhile get distinct addresses, and every published port ends
// up in the map exactly once despite the table rebuild racing them.
func TestConcurrentAttach(t *testing.T) {
	m, _ := newTestManager(t)
	ctx := context.Background()
	mustNet(t, m, "cc", "10.247.0.0/24", false)
	const n = 16
	nss := make([]string, n)
	for i := range nss {
		nss[i] = newNetns(t, fmt.Sprintf("cc%d", i))
	}
	var wg sync.WaitGroup
	eps := make([]*Endpoint, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ports := []PortMapping{{HostPort: uint16(19000 + i), ContainerPort: 80, Proto: "tcp"}}
			eps[i], errs[i] = m.Attach(ctx, fmt.Sprintf("cc%d", i), nss[i], "cc", AttachOptions{Ports: ports})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := m.CreateNetwork(ctx, NetworkConfig{Name: "cc2"}); err != nil {
			t.Errorf("CreateNetwork during attaches: %v", err)
		}
	}()
	wg.Wait()
	seen := map[string]bool{}
	for i, e := range eps {
		if errs[i] != nil {
			t.Fatalf("attach %d: %v", i, errs[i])
		}
		if seen[e.IP.String()] {
			t.Fatalf("address %s given twice", e.IP)
		}
		seen[e.IP.String()] = true
	}
	any, _ := pubSets(m.fw.table)
	els, err := m.fw.conn.GetSetElements(any)
	if err != nil || len(els) != n {
		t.Fatalf("pub4 has %d elements (%v), want %d", len(els), err, n)
	}
	for i := range n {
		if err := m.Detach(ctx, fmt.Sprintf("cc%d", i), "cc"); err != nil {
			t.Fatal(err)
		}
	}
	if els, _ := m.fw.conn.GetSetElements(any); len(els) != 0 {
		t.Fatalf("pub4 has %d elements after detach", len(els))
	}
}
