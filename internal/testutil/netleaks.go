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

// Net captures the host namespace's links, routes, nftables tables whose
// names start with prefix (routes: through such links, or unreachable ones),
// and the test process's child processes. The prefix keeps other work on a
// shared host (another package's tests, a peer's bench) out of the check.
func Net(t testing.TB, prefix string) NetState {
	t.Helper()
	s := NetState{Links: map[string]bool{}, Routes: map[string]bool{}, Tables: map[string]bool{}, Children: map[string]bool{}}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	ours := map[int]bool{}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			s.Links[l.Attrs().Name] = true
			ours[l.Attrs().Index] = true
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteList(nil, fam)
		if err != nil {
			t.Fatalf("list routes: %v", err)
		}
		for _, r := range routes {
			if !ours[r.LinkIndex] && r.LinkIndex != 0 {
				continue
			}
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
		if !strings.HasPrefix(tb.Name, prefix) {
			continue
		}
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
// a link, route or nftables table named with prefix, or a child process,
// exists that did not exist when it was called. Call it first in a test, so
// that it runs last.
func CheckNoNetLeaks(t testing.TB, prefix string) {
	t.Helper()
	before := Net(t, prefix)
	t.Cleanup(func() {
		after := Net(t, prefix)
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

// CheckNoMountsUnder registers a cleanup that fails t if a mount point
// below dir exists when the test ends (a pinned netns file, for one).
// Unlike CheckNoNewMounts it ignores mounts made elsewhere on the host.
func CheckNoMountsUnder(t testing.TB, dir string) {
	t.Helper()
	t.Cleanup(func() {
		for m := range Mounts(t) {
			if m == dir || strings.HasPrefix(m, strings.TrimSuffix(dir, "/")+"/") {
				t.Errorf("mount leaked: %s", m)
			}
		}
	})
}
