package container

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMappedHostID(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 5000, Size: 1}}
	for _, tc := range []struct {
		id   uint32
		host int
		ok   bool
	}{
		{0, 100000, true},
		{999, 100999, true},
		{1000, 5000, true},
		{1001, 0, false},
	} {
		host, ok := mappedHostID(m, tc.id)
		if host != tc.host || ok != tc.ok {
			t.Errorf("mappedHostID(%d) = %d, %v; want %d, %v", tc.id, host, ok, tc.host, tc.ok)
		}
	}
	if _, ok := mappedHostID(nil, 0); ok {
		t.Error("empty mapping maps 0")
	}
}

func TestFindNsenter(t *testing.T) {
	dir := t.TempDir()
	util := filepath.Join(dir, "nsenter")
	bb := filepath.Join(dir, "busybox")
	link := filepath.Join(dir, "bb-nsenter")
	for _, p := range []string{util, bb} {
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("busybox", link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name    string
		paths   []string
		want    string
		busybox bool
	}{
		{"util-linux", []string{missing, util}, util, false},
		{"busybox link", []string{link, util}, bb, true},
		{"none", []string{missing}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, busybox, err := findNsenter(tc.paths)
			if tc.want == "" {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("err %v, want ErrUnsupported", err)
				}
				return
			}
			if err != nil || got != tc.want || busybox != tc.busybox {
				t.Fatalf("= %q, %v, %v; want %q, %v", got, busybox, err, tc.want, tc.busybox)
			}
		})
	}
}
