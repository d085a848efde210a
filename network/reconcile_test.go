package network

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/google/nftables"
)

// TestRestartReconcile: a restarted manager keeps addresses (no duplicate
// allocation), and Reconcile removes endpoints the engine no longer has
// and leaves exactly one copy of every rule and map element.
func TestRestartReconcile(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNetLeaks(t, "est")
	ctx := context.Background()
	cfg := Config{Store: FileStore{Dir: filepath.Join(t.TempDir(), "state")},
		DefaultSubnet: netip.MustParsePrefix("10.230.0.0/24"), ResolvConf: writeResolvConf(t, "")}
	m1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cur := m1
	t.Cleanup(func() { cur.Teardown(ctx); cur.Close() })
	mustNet(t, m1, "ra", "10.239.0.0/24", false)
	ns1, ns2 := newNetns(t, "r1"), newNetns(t, "r2")
	p1, _ := ParsePorts("18090:80")
	p2, _ := ParsePorts("18091-18092:80-81/udp")
	e1 := mustAttach(t, m1, "r1", ns1, "ra", AttachOptions{Ports: p1, Bandwidth: Bandwidth{IngressRate: 50e6}})
	mustAttach(t, m1, "r2", ns2, "ra", AttachOptions{Ports: p2})
	rulesBefore := countRules(t, TableName)
	m1.Close()

	// Restart: same store, same host.
	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cur = m2
	if got := countRules(t, TableName); got != rulesBefore {
		t.Errorf("after restart %d rules, before %d", got, rulesBefore)
	}
	e3 := mustAttach(t, m2, "r3", newNetns(t, "r3"), "ra", AttachOptions{})
	if e3.IP == e1.IP || e3.IP.String() != "10.239.0.4" {
		t.Errorf("after restart r3 got %s (r1 has %s)", e3.IP, e1.IP)
	}
	removed, err := m2.Reconcile(ctx, []DesiredEndpoint{{ContainerID: "r1", Network: "ra"}, {ContainerID: "r3", Network: "ra"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].ContainerID != "r2" {
		t.Errorf("removed %v, want r2", removed)
	}
	if eps := m2.Endpoints("ra"); len(eps) != 2 {
		t.Fatalf("after reconcile: %d endpoints", len(eps))
	}
	if got := countRules(t, TableName); got != rulesBefore {
		t.Errorf("after reconcile %d rules, before %d", got, rulesBefore)
	}
	any, _ := pubSets(m2.fw.table)
	c, _ := nftables.New()
	els, err := c.GetSetElements(any)
	if err != nil || len(els) != 1 {
		t.Errorf("pub4 elements after reconcile: %d %v (want only r1's)", len(els), err)
	}
	if m2.linkExists(devName(vethPrefix, e1.Network, "r2")) {
		t.Error("r2's veth survived reconcile")
	}
	// A second Reconcile changes nothing.
	if removed, err := m2.Reconcile(ctx, []DesiredEndpoint{{ContainerID: "r1", Network: "ra"}, {ContainerID: "r3", Network: "ra"}}); err != nil || len(removed) != 0 {
		t.Fatal(removed, err)
	}
	if got := countRules(t, TableName); got != rulesBefore {
		t.Errorf("after 2nd reconcile %d rules", got)
	}
	serveEcho(t, ns1, ":80", "r1")
	if _, err := dialIn("", "127.0.0.1:18090", 2*time.Second); err != nil {
		t.Errorf("r1's port after reconcile: %v", err)
	}
}

func countRules(t *testing.T, table string) int {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		rs, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatal(err)
		}
		n += len(rs)
	}
	return n
}

// TestTableRemovedFromOutside: an attach that finds our table gone (nft
// flush ruleset, or another tool) rebuilds it from the records.
func TestTableRemovedFromOutside(t *testing.T) {
	m, _ := newTestManager(t)
	mustNet(t, m, "tr", "10.247.0.0/24", false)
	ns1 := newNetns(t, "t1")
	mustAttach(t, m, "t1", ns1, "tr", AttachOptions{Ports: mustPorts(t, "18097:8080")})
	if err := m.fw.remove(); err != nil {
		t.Fatal(err)
	}
	ns2 := newNetns(t, "t2")
	mustAttach(t, m, "t2", ns2, "tr", AttachOptions{Ports: mustPorts(t, "18098:8080")})
	serveEcho(t, ns1, ":8080", "t1")
	serveEcho(t, ns2, ":8080", "t2")
	for addr, want := range map[string]string{"127.0.0.1:18097": "t1", "127.0.0.1:18098": "t2"} {
		if got, err := dialRetry("", addr); !strings.Contains(got, "hello from "+want) {
			t.Errorf("%s after the table was rebuilt: %q %v", addr, got, err)
		}
	}
}
