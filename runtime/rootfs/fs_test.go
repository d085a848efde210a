package rootfs

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFSConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		typ    string
		source string
		opts   []string
		want   FSConfig
	}{
		{
			name: "runc /dev", typ: "tmpfs", source: "tmpfs",
			opts: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			want: FSConfig{Source: "tmpfs", Params: [][2]string{{"mode", "755"}, {"size", "65536k"}},
				Attrs: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_STRICTATIME},
		},
		{
			name: "runc devpts", typ: "devpts", source: "devpts",
			opts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			want: FSConfig{Source: "devpts", Flags: []string{"newinstance"},
				Params: [][2]string{{"ptmxmode", "0666"}, {"mode", "0620"}, {"gid", "5"}},
				Attrs:  unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC},
		},
		{
			name: "ro is a mount attribute, never a superblock flag", typ: "sysfs", source: "sysfs",
			opts: []string{"nosuid", "noexec", "nodev", "ro"},
			want: FSConfig{Source: "sysfs", Attrs: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "recursive attributes too", typ: "tmpfs",
			opts: []string{"rro", "nodev"},
			want: FSConfig{Attrs: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV},
		},
		{
			name: "silent and loud skipped, superblock flags first", typ: "tmpfs",
			opts: []string{"huge=never", "silent", "sync", "loud", "noswap", "dirsync"},
			want: FSConfig{Flags: []string{"sync", "dirsync", "noswap"}, Params: [][2]string{{"huge", "never"}}},
		},
		{
			name: "order kept, value cut at the first =", typ: "overlay", source: "overlay",
			opts: []string{"lowerdir+=/b", "lowerdir+=/a", "upperdir=/u=1", "index"},
			want: FSConfig{Source: "overlay", Flags: []string{"index"},
				Params: [][2]string{{"lowerdir+", "/b"}, {"lowerdir+", "/a"}, {"upperdir", "/u=1"}}},
		},
		{
			name: "cgroup v1 controllers", typ: "cgroup", source: "cgroup",
			opts: []string{"cpu", "cpuacct", "name=systemd", "none"},
			want: FSConfig{Source: "cgroup", Flags: []string{"cpu", "cpuacct", "none"}, Params: [][2]string{{"name", "systemd"}}},
		},
		{
			name: "no options", typ: "mqueue", source: "mqueue",
			want: FSConfig{Source: "mqueue"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.typ, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := o.fsConfig(tc.source); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("fsConfig(%q) =\n%+v, want\n%+v", tc.opts, got, tc.want)
			}
		})
	}
}
