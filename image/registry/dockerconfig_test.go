package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
	},"credHelpers":{"ecr.example":"ecr-login"},"psFormat":"table"}`)
	cfg, err := LoadDockerConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want Credential
		err  error
	}{
		{"docker.io", Credential{Username: "hub", Password: "pw:with:colons"}, nil},
		{"old.example:5000", Credential{Username: "u2", Password: "p2"}, nil},
		{"tok.example", Credential{IdentityToken: "refresh"}, nil},
		{"other.example", Credential{}, nil},
		{"ecr.example", Credential{}, ErrUnsupported},
		{"bad.example", Credential{}, errors.New("any")},
	}
	for _, tt := range tests {
		got, err := cfg.Credential(tt.host)
		if tt.err != nil {
			if err == nil || (tt.err == ErrUnsupported && !errors.Is(err, ErrUnsupported)) {
				t.Errorf("Credential(%s) = %v, want error %v", tt.host, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Credential(%s) = %+v, %v; want %+v", tt.host, got, err, tt.want)
		}
	}
}

func TestDockerConfigCredsStore(t *testing.T) {
	cfg, err := LoadDockerConfig(writeConfig(t, `{"auths":{"a.example":{}},"credsStore":"desktop"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Credential("a.example"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("credsStore lookup: %v, want ErrUnsupported", err)
	}
	if err := cfg.Store("a.example", Credential{Username: "u", Password: "p"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Store with credsStore: %v, want ErrUnsupported", err)
	}
}

func TestDockerConfigStoreRemove(t *testing.T) {
	p := writeConfig(t, `{"auths":{"keep.example":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("k:v"))+`"}},"detachKeys":"ctrl-x"}`)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadDockerConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Store("docker.io", Credential{Username: "me", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Store("localhost:5000", Credential{Username: "l", Password: "q"}); err != nil {
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
	again, err := LoadDockerConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]Credential{"docker.io": {Username: "me", Password: "pw"}, "keep.example": {Username: "k", Password: "v"}} {
		if got, err := again.Credential(host); err != nil || got != want {
			t.Errorf("after reload, %s = %+v, %v", host, got, err)
		}
	}
	if err := again.Remove("docker.io"); err != nil {
		t.Fatal(err)
	}
	if err := again.Remove("docker.io"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	third, _ := LoadDockerConfig(p)
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
	cfg, err := LoadDockerConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.Credential("x.example"); err != nil || !got.IsZero() {
		t.Fatalf("empty config: %+v, %v", got, err)
	}
	if err := cfg.Store("x.example", Credential{Username: "a", Password: "b"}); err != nil {
		t.Fatalf("Store creating the directory: %v", err)
	}
	if _, err := LoadDockerConfig(writeConfig(t, `{"auths":[]}`)); err == nil {
		t.Fatal("malformed auths accepted")
	}
}
