package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
)

// newTestManager starts a Manager on a temp store whose default network
// uses a test range; cleanup tears everything down. Leak checks are
// registered first so they run after the teardown.
func newTestManager(t *testing.T) (*Manager, Config) {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.CheckNoNetLeaks(t, "est")
	cfg := Config{
		Store:         FileStore{Dir: filepath.Join(t.TempDir(), "state")},
		DefaultSubnet: netip.MustParsePrefix("10.230.0.0/24"),
		ResolvConf:    writeResolvConf(t, "nameserver 127.0.0.53\n"),
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Teardown(context.Background()); err != nil {
			t.Errorf("Teardown: %v", err)
		}
		m.Close()
	})
	return m, cfg
}

func writeResolvConf(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// newNetns makes a pinned namespace removed at cleanup.
func newNetns(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	testutil.CheckNoMountsUnder(t, dir) // runs after RemoveNetns below
	p, err := CreateNetns(dir, name)
	if err != nil {
		t.Fatalf("CreateNetns: %v", err)
	}
	t.Cleanup(func() {
		if err := RemoveNetns(p); err != nil {
			t.Errorf("RemoveNetns: %v", err)
		}
	})
	return p
}

func mustNet(t *testing.T, m *Manager, name, subnet string, internal bool) *Network {
	t.Helper()
	n, err := m.CreateNetwork(context.Background(), NetworkConfig{Name: name, Subnet: netip.MustParsePrefix(subnet), Internal: internal})
	if err != nil {
		t.Fatalf("CreateNetwork %s: %v", name, err)
	}
	return n
}

func mustAttach(t *testing.T, m *Manager, id, ns, net string, opts AttachOptions) *Endpoint {
	t.Helper()
	ep, err := m.Attach(context.Background(), id, ns, net, opts)
	if err != nil {
		t.Fatalf("Attach %s to %s: %v", id, net, err)
	}
	return ep
}

// serveEcho listens on network/addr inside ns and answers every TCP
// connection with "hello from <name>" plus the peer's address.
func serveEcho(t *testing.T, ns, addr, name string) {
	t.Helper()
	var ln net.Listener
	err := InNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s to %s\n", name, c.RemoteAddr())
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// dialIn connects from inside ns (or from the host if ns is "") and returns
// what the server said.
func dialIn(ns, addr string, timeout time.Duration) (string, error) {
	var out string
	do := func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		b, err := io.ReadAll(c)
		out = string(b)
		return err
	}
	if ns == "" {
		return out, do()
	}
	return out, InNetns(ns, do)
}
