package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// NetState is what a test could leave behind in the host's network
// namespace: links, routes of the main table, and nftables tables.
type NetState struct {
	Links, Routes, Tables, Children map[string]bool
}

// Net captures the host namespace's links, routes, nftables tables, and the
// test process's child processes.
func Net(t testing.TB) NetState {
	t.Helper()
	s := NetState{Links: map[string]bool{}, Routes: map[string]bool{}, Tables: map[string]bool{}, Children: map[string]bool{}}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	for _, l := range links {
		s.Links[l.Attrs().Name] = true
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteList(nil, fam)
		if err != nil {
			t.Fatalf("list routes: %v", err)
		}
		for _, r := range routes {
			s.Routes[fmt.Sprintf("%v dev %d type %d", r.Dst, r.LinkIndex, r.Type)] = true
		}
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("list nft tables: %v", err)
	}
	for _, tb := range tables {
		s.Tables[fmt.Sprintf("%d %s", tb.Family, tb.Name)] = true
	}
	for _, pid := range children() {
		s.Children[pid] = true
	}
	return s
}

// children lists the PIDs whose parent is this process.
func children() []string {
	self := fmt.Sprint(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at ')'.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == self {
			out = append(out, filepath.Base(filepath.Dir(p)))
		}
	}
	return out
}

// CheckNoNetLeaks registers a cleanup that fails t if, when the test ends,
// a link, route, nftables table or child process exists that did not exist
// when it was called. Call it first in a test, so that it runs last.
func CheckNoNetLeaks(t testing.TB) {
	t.Helper()
	before := Net(t)
	t.Cleanup(func() {
		after := Net(t)
		diff := func(what string, b, a map[string]bool) {
			for k := range a {
				if !b[k] {
					t.Errorf("%s leaked: %s", what, k)
				}
			}
		}
		diff("link", before.Links, after.Links)
		diff("route", before.Routes, after.Routes)
		diff("nft table", before.Tables, after.Tables)
		diff("child process", before.Children, after.Children)
	})
}
