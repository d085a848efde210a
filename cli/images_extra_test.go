package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/image/reference"
	"github.com/estiba/estiba/image/registry/dockerconfig"
)

// fakeDaemon answers /auth (accepting one password) and push, recording
// the X-Registry-Auth header each push carried.
type fakeDaemon struct {
	socket string
	pushes []types.AuthConfig
}

func startFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "estiba-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeDaemon{socket: filepath.Join(dir, "s")}
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth", func(w http.ResponseWriter, r *http.Request) {
		var a types.AuthConfig
		json.NewDecoder(r.Body).Decode(&a)
		if a.Password != "right" || a.ServerAddress != "reg.test:5000" {
			w.WriteHeader(500)
			json.NewEncoder(w).Encode(types.ErrorResponse{Message: "login to reg.test:5000 failed: unauthorized"})
			return
		}
		json.NewEncoder(w).Encode(types.AuthResponse{Status: "Login Succeeded"})
	})
	mux.HandleFunc("POST /images/{name...}", func(w http.ResponseWriter, r *http.Request) {
		var a types.AuthConfig
		if h := r.Header.Get("X-Registry-Auth"); h != "" {
			b, _ := base64URL(h)
			json.Unmarshal(b, &a)
		}
		f.pushes = append(f.pushes, a)
		json.NewEncoder(w).Encode(types.JSONMessage{Status: "latest: digest: sha256:1 size: 1"})
	})
	srv := &http.Server{Handler: http.StripPrefix("/v"+types.APIVersion, mux)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fakeDaemon) run(home, stdin string, args ...string) (string, int) {
	var out bytes.Buffer
	c := &CLI{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &out, Version: "test",
		Getenv: func(k string) string {
			if k == "HOME" {
				return home
			}
			return ""
		}}
	code := c.Run(append([]string{"-H", "unix://" + f.socket}, args...))
	return out.String(), code
}

func TestLoginPushLogout(t *testing.T) {
	f := startFakeDaemon(t)
	home := t.TempDir()
	cfg := filepath.Join(home, ".docker", "config.json")
	steps := []struct {
		args  []string
		stdin string
		code  int
		want  string
	}{
		{[]string{"push", "reg.test:5000/a/b"}, "", 0, "digest"}, // anonymous
		{[]string{"login", "-u", "me", "-p", "wrong", "reg.test:5000"}, "", 1, "unauthorized"},
		{[]string{"login", "-u", "me", "reg.test:5000"}, "", 125, "no interactive prompt"},
		{[]string{"login", "-p", "x", "--password-stdin", "-u", "me", "reg.test:5000"}, "", 125, "mutually exclusive"},
		{[]string{"login", "-u", "me", "--password-stdin", "reg.test:5000"}, "right\n", 0, "Login Succeeded"},
		{[]string{"push", "reg.test:5000/a/b:v1"}, "", 0, "digest"}, // with the stored credential
		{[]string{"push", "other.test/a/b"}, "", 0, "digest"},       // not for this registry
		{[]string{"logout", "reg.test:5000"}, "", 0, "Removing login credentials for reg.test:5000"},
		{[]string{"push", "reg.test:5000/a/b"}, "", 0, "digest"}, // anonymous again
	}
	for _, s := range steps {
		out, code := f.run(home, s.stdin, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Fatalf("%v: exit %d %q, want %d %q", s.args, code, out, s.code, s.want)
		}
	}
	want := []string{"", "me", "", ""}
	if len(f.pushes) != len(want) {
		t.Fatalf("pushes %+v", f.pushes)
	}
	for i, u := range want {
		if f.pushes[i].Username != u || (u != "" && (f.pushes[i].Password != "right" || f.pushes[i].ServerAddress != "reg.test:5000")) {
			t.Errorf("push %d sent %+v, want user %q", i, f.pushes[i], u)
		}
	}
	dc, err := dockerconfig.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := dc.Credential("reg.test:5000"); !c.IsZero() {
		t.Errorf("credential left after logout: %+v", c)
	}
}

func base64URL(s string) ([]byte, error) { return base64.URLEncoding.DecodeString(s) }

// registryDomain agrees with the reference parser the daemon uses.
func TestRegistryDomain(t *testing.T) {
	for _, ref := range []string{"alpine", "alpine:3", "library/alpine", "user/app:v1", "docker.io/library/alpine",
		"index.docker.io/user/app", "localhost/x", "localhost:5000/x:t", "reg.test:5000/a/b/c", "Reg/app",
		"quay.io/org/app@sha256:" + strings.Repeat("a", 64), "app@sha256:" + strings.Repeat("b", 64), "127.0.0.1:5000/x"} {
		r, err := reference.Parse(ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if got := registryDomain(ref); got != r.Domain {
			t.Errorf("registryDomain(%q) = %q, the reference parser says %q", ref, got, r.Domain)
		}
	}
}
