package service

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// What a caller does with a config it got must not reach the next one.
func TestMetaCacheHandsOutCopies(t *testing.T) {
	var c metaCache
	cfg := ocispec.Image{Config: ocispec.ImageConfig{Env: make([]string, 1, 4), Labels: map[string]string{"a": "1"}}}
	cfg.Config.Env[0] = "A=1"
	c.put("sha256:x", ocispec.Manifest{}, cfg)
	_, got, ok := c.get("sha256:x")
	if !ok {
		t.Fatal("miss")
	}
	got.Config.Env[0] = "B=2"
	_ = append(got.Config.Env, "C=3")
	got.Config.Labels["a"] = "2"
	cfg.Config.Env[0] = "D=4" // the first caller's copy
	_, again, _ := c.get("sha256:x")
	if len(again.Config.Env) != 1 || again.Config.Env[0] != "A=1" || again.Config.Labels["a"] != "1" {
		t.Fatalf("cached config changed by callers: %+v", again.Config)
	}
}
