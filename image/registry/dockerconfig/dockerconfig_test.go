package dockerconfig_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estiba/estiba/image/registry/dockerconfig"
	"github.com/estiba/estiba/image/registry/registrytest"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDockerConfigCredential(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("hub:pw:with:colons"))
	p := writeConfig(t, `{"auths":{
		"https://index.docker.io/v1/":{"auth":"`+auth+`"},
		"https://old.example:5000/v1/":{"username":"u2","password":"p2"},
		"tok.example":{"identitytoken":"refresh"},
		"bad.example":{"auth":"!!!"}
	},"credHelpers":{"ecr.example":"estiba-missing-helper"},"psFormat":"table"}`)
	cfg, err := dockerconfig.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want dockerconfig.Credential
		err  error
	}{
		{"docker.io", dockerconfig.Credential{Username: "hub", Password: "pw:with:colons"}, nil},
		{"old.example:5000", dockerconfig.Credential{Username: "u2", Password: "p2"}, nil},
		{"tok.example", dockerconfig.Credential{IdentityToken: "refresh"}, nil},
		{"other.example", dockerconfig.Credential{}, nil},
		{"ecr.example", dockerconfig.Credential{}, exec.ErrNotFound}, // its helper is not installed
		{"bad.example", dockerconfig.Credential{}, errors.New("any")},
	}
	for _, tt := range tests {
		got, err := cfg.Credential(tt.host)
		if tt.err != nil {
			if err == nil || (tt.err == exec.ErrNotFound && !errors.Is(err, exec.ErrNotFound)) {
				t.Errorf("Credential(%s) = %v, want error %v", tt.host, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Credential(%s) = %+v, %v; want %+v", tt.host, got, err, tt.want)
		}
	}
}

// TestDockerConfigHelpers drives a real helper program (a script speaking
// the docker-credential-helpers protocol): credsStore for every registry,
// credHelpers overriding it per registry, inline auths ignored for a host
// a helper serves (as the docker CLI does).
func TestDockerConfigHelpers(t *testing.T) {
	h := registrytest.NewCredHelper(t)
	p := writeConfig(t, `{"auths":{"a.example":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("inline:pw"))+`"}},
		"credsStore":"`+h.Name+`","credHelpers":{"b.example":"estiba-missing-helper","index.docker.io":"`+h.Name+`"}}`)
	cfg, err := dockerconfig.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"store a", func() error { return cfg.Store("a.example", dockerconfig.Credential{Username: "u", Password: "p"}) }},
		{"store hub token", func() error {
			return cfg.Store("docker.io", dockerconfig.Credential{Username: "me", IdentityToken: "idt"})
		}},
		{"store b: helper missing", func() error {
			if err := cfg.Store("b.example", dockerconfig.Credential{Username: "x", Password: "y"}); !errors.Is(err, exec.ErrNotFound) {
				return fmt.Errorf("store through a missing helper: %v", err)
			}
			return nil
		}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	if got := h.Stored(t, "a.example"); got != `{"ServerURL":"a.example","Username":"u","Secret":"p"}` {
		t.Errorf("helper holds %q for a.example", got)
	}
	if got := h.Stored(t, "https://index.docker.io/v1/"); !strings.Contains(got, `"Username":"<token>","Secret":"idt"`) {
		t.Errorf("helper holds %q for docker hub", got)
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), "inline") || strings.Contains(string(data), "idt") {
		t.Errorf("secrets left in the file: %s", data)
	}
	again, err := dockerconfig.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		want dockerconfig.Credential
	}{
		{"a.example", dockerconfig.Credential{Username: "u", Password: "p"}},
		{"docker.io", dockerconfig.Credential{IdentityToken: "idt"}},
		{"c.example", dockerconfig.Credential{}}, // the helper has none: anonymous, no error
	} {
		if got, err := again.Credential(tc.host); err != nil || got != tc.want {
			t.Errorf("Credential(%s) = %+v, %v; want %+v", tc.host, got, err, tc.want)
		}
	}
	if err := again.Remove("a.example"); err != nil {
		t.Fatal(err)
	}
	if h.Stored(t, "a.example") != "" {
		t.Error("erase left the credential in the helper")
	}
	if err := again.Remove("a.example"); !errors.Is(err, dockerconfig.ErrNotFound) {
		t.Errorf("second Remove: %v, want dockerconfig.ErrNotFound", err)
	}
	if got := strings.Join(h.Calls(t), " "); got != "store store get get get erase erase" {
		t.Errorf("helper calls %q", got)
	}
}

func TestDockerConfigStoreRemove(t *testing.T) {
	p := writeConfig(t, `{"auths":{"keep.example":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("k:v"))+`"}},"detachKeys":"ctrl-x"}`)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := dockerconfig.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Store("docker.io", dockerconfig.Credential{Username: "me", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Store("localhost:5000", dockerconfig.Credential{Username: "l", Password: "q"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, %v; want 0600", st.Mode(), err)
	}
	var raw map[string]json.RawMessage
	data, _ := os.ReadFile(p)
	if err := json.Unmarshal(data, &raw); err != nil || string(raw["detachKeys"]) != `"ctrl-x"` {
		t.Fatalf("other settings lost: %s", data)
	}
	again, err := dockerconfig.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]dockerconfig.Credential{"docker.io": {Username: "me", Password: "pw"}, "keep.example": {Username: "k", Password: "v"}} {
		if got, err := again.Credential(host); err != nil || got != want {
			t.Errorf("after reload, %s = %+v, %v", host, got, err)
		}
	}
	if err := again.Remove("docker.io"); err != nil {
		t.Fatal(err)
	}
	if err := again.Remove("docker.io"); !errors.Is(err, dockerconfig.ErrNotFound) {
		t.Errorf("second Remove: %v, want dockerconfig.ErrNotFound", err)
	}
	third, _ := dockerconfig.Load(p)
	if got, _ := third.Credential("docker.io"); !got.IsZero() {
		t.Errorf("removed credential still there: %+v", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestDockerConfigMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "config.json")
	cfg, err := dockerconfig.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.Credential("x.example"); err != nil || !got.IsZero() {
		t.Fatalf("empty config: %+v, %v", got, err)
	}
	if err := cfg.Store("x.example", dockerconfig.Credential{Username: "a", Password: "b"}); err != nil {
		t.Fatalf("Store creating the directory: %v", err)
	}
	if _, err := dockerconfig.Load(writeConfig(t, `{"auths":[]}`)); err == nil {
		t.Fatal("malformed auths accepted")
	}
}
