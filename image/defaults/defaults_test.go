package defaults

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func rootfs(t *testing.T) string {
	r := t.TempDir()
	os.MkdirAll(filepath.Join(r, "etc"), 0o755)
	os.WriteFile(filepath.Join(r, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(r, "etc/group"), []byte("root:x:0:\nwww:x:33:\napp:x:1000:\nwheel:x:10:root,app\naudio:x:29:app\n"), 0o644)
	return r
}

func TestResolveUser(t *testing.T) {
	r := rootfs(t)
	tests := []struct {
		spec    string
		want    User
		wantErr bool
	}{
		{"", User{UID: 0, GID: 0, AdditionalGids: []uint32{10}, Home: "/root"}, false},
		{"app", User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}, Home: "/home/app"}, false},
		{"1000", User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}, Home: "/home/app"}, false},
		{"www:audio", User{UID: 33, GID: 29, Home: "/var/www"}, false},
		{"4242:4343", User{UID: 4242, GID: 4343, Home: "/"}, false},
		{"nobody", User{}, true},
		{"app:nogroup", User{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ResolveUser(tc.spec, r)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPasswdSymlinkStaysInRoot(t *testing.T) {
	r := t.TempDir()
	os.MkdirAll(filepath.Join(r, "etc"), 0o755)
	os.Symlink("/../../../../etc/passwd", filepath.Join(r, "etc/passwd"))
	// The host's root user must not be found through the symlink.
	if _, err := ResolveUser("root", r); err == nil {
		t.Fatal("resolved a user through a symlink leaving the rootfs")
	}
}

func TestFromImage(t *testing.T) {
	cfg := ocispec.ImageConfig{
		User: "app", Env: []string{"A=1"}, Cmd: []string{"sh"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Volumes:      map[string]struct{}{"/data": {}}, StopSignal: "SIGQUIT",
	}
	d, err := FromImage(cfg, rootfs(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.WorkingDir != "/" || d.User.UID != 1000 || !reflect.DeepEqual(d.ExposedPorts, []string{"53/udp", "80/tcp"}) ||
		len(d.Env) != 3 || d.StopSignal != "SIGQUIT" || d.Volumes[0] != "/data" {
		t.Fatalf("defaults %+v", d)
	}
}
