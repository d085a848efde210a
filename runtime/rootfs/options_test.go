package rootfs

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	const (
		ro      = unix.MOUNT_ATTR_RDONLY
		nosuid  = unix.MOUNT_ATTR_NOSUID
		nodev   = unix.MOUNT_ATTR_NODEV
		noexec  = unix.MOUNT_ATTR_NOEXEC
		atime   = unix.MOUNT_ATTR__ATIME
		noatime = unix.MOUNT_ATTR_NOATIME
		strict  = unix.MOUNT_ATTR_STRICTATIME
		nosym   = unix.MOUNT_ATTR_NOSYMFOLLOW
	)
	tests := []struct {
		name    string
		typ     string
		opts    []string
		want    mountOptions
		wantErr string
	}{
		{name: "empty", typ: "tmpfs", want: mountOptions{}},
		{name: "runc dev tmpfs", typ: "tmpfs", opts: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			want: mountOptions{attrSet: nosuid | strict, attrClr: atime, data: []string{"mode=755", "size=65536k"}}},
		{name: "devpts", typ: "devpts", opts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			want: mountOptions{attrSet: nosuid | noexec, data: []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
		{name: "ro sysfs", typ: "sysfs", opts: []string{"nosuid", "noexec", "nodev", "ro"},
			want: mountOptions{attrSet: nosuid | noexec | nodev | ro}},
		{name: "bind type", typ: "bind", opts: []string{"ro"}, want: mountOptions{bind: true, attrSet: ro}},
		{name: "rbind option", typ: "none", opts: []string{"rbind", "nosuid"}, want: mountOptions{bind: true, recursive: true, attrSet: nosuid}},
		{name: "last of ro rw wins", typ: "bind", opts: []string{"ro", "rw"}, want: mountOptions{bind: true, attrClr: ro}},
		{name: "last of rw ro wins", typ: "bind", opts: []string{"rw", "ro"}, want: mountOptions{bind: true, attrSet: ro}},
		{name: "noatime then relatime", typ: "bind", opts: []string{"noatime", "relatime"}, want: mountOptions{bind: true, attrClr: atime}},
		{name: "noatime", typ: "bind", opts: []string{"noatime"}, want: mountOptions{bind: true, attrSet: noatime, attrClr: atime}},
		{name: "recursive attrs", typ: "bind", opts: []string{"rbind", "rro", "rnosuid", "rnoatime", "rw"},
			want: mountOptions{bind: true, recursive: true, recSet: ro | nosuid | noatime, recClr: atime, attrClr: ro}},
		{name: "nosymfollow", typ: "bind", opts: []string{"bind", "nosymfollow", "rnosymfollow"},
			want: mountOptions{bind: true, attrSet: nosym, recSet: nosym}},
		{name: "relatime is not r-elatime", typ: "bind", opts: []string{"relatime"}, want: mountOptions{bind: true, attrClr: atime}},
		{name: "propagation", typ: "bind", opts: []string{"rshared"}, want: mountOptions{bind: true, propagation: unix.MS_SHARED, recPropagation: true}},
		{name: "last propagation wins", typ: "bind", opts: []string{"rshared", "private"}, want: mountOptions{bind: true, propagation: unix.MS_PRIVATE}},
		{name: "unbindable", typ: "tmpfs", opts: []string{"runbindable"}, want: mountOptions{propagation: unix.MS_UNBINDABLE, recPropagation: true}},
		{name: "slave", typ: "tmpfs", opts: []string{"slave"}, want: mountOptions{propagation: unix.MS_SLAVE}},
		{name: "idmap", typ: "bind", opts: []string{"idmap"}, want: mountOptions{bind: true, idmap: true}},
		{name: "ridmap", typ: "bind", opts: []string{"rbind", "ridmap"}, want: mountOptions{bind: true, recursive: true, idmap: true, recIdmap: true}},
		{name: "superblock flags", typ: "tmpfs", opts: []string{"sync", "dirsync", "lazytime", "nomand"},
			want: mountOptions{sbFlags: []string{"sync", "dirsync", "lazytime", "nomand"}}},
		{name: "defaults", typ: "tmpfs", opts: []string{"defaults"}, want: mountOptions{}},
		{name: "default sb flags on bind are no-ops", typ: "bind", opts: []string{"async", "nomand"}, want: mountOptions{bind: true}},
		{name: "unknown option is data", typ: "tmpfs", opts: []string{"noswap", "huge=within_size"},
			want: mountOptions{data: []string{"noswap", "huge=within_size"}}},
		{name: "data options on bind are dropped", typ: "bind", opts: []string{"mode=755", "size=1k", "ro"}, want: mountOptions{bind: true, attrSet: ro}},
		{name: "sync on bind", typ: "bind", opts: []string{"sync"}, wantErr: "changes the source's file system"},
		{name: "remount", typ: "bind", opts: []string{"remount"}, wantErr: "always a new mount"},
		{name: "tmpcopyup", typ: "tmpfs", opts: []string{"tmpcopyup", "mode=755"}, want: mountOptions{copyUp: true, data: []string{"mode=755"}}},
		{name: "tmpcopyup on bind", typ: "bind", opts: []string{"tmpcopyup"}, wantErr: "only for tmpfs"},
		{name: "idmap on tmpfs", typ: "tmpfs", opts: []string{"idmap"}, wantErr: "only bind mounts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOptions(tc.typ, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseOptions(%q, %q)\n got %+v\nwant %+v", tc.typ, tc.opts, got, tc.want)
			}
		})
	}
}

func TestRelPath(t *testing.T) {
	for in, want := range map[string]string{
		"/": ".", "": ".", "/dev/null": "dev/null", "dev//pts/": "dev/pts", "/../../etc": "etc", "a/../../b": "b",
	} {
		if got := relPath(in); got != want {
			t.Errorf("relPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseCgroupFile(t *testing.T) {
	in := "9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/\n0::/\n"
	got, err := parseCgroupFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []hierarchy{{"name=systemd", "/"}, {"memory", "/a/b"}, {"cpu,cpuacct", "/"}, {"", "/"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	dirs := []string{"systemd", "memory", "cpu,cpuacct", "unified"}
	for i, h := range got {
		if h.dir() != dirs[i] {
			t.Errorf("dir of %+v = %q, want %q", h, h.dir(), dirs[i])
		}
	}
	if _, err := parseCgroupFile([]byte("garbage\n")); err == nil {
		t.Error("malformed line accepted")
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
