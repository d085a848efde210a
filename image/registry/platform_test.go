package registry

import (
	"errors"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"linux/amd64", "linux/amd64"},
		{"Linux/x86_64", "linux/amd64"},
		{"linux/amd64/v1", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"linux/aarch64", "linux/arm64"},
		{"linux/arm64/v8", "linux/arm64"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/s390x", "linux/s390x"},
		{"arm64", "linux/arm64"},
		{"linux", "linux/" + runtime.GOARCH},
		{"windows/amd64", "windows/amd64"},
	}
	for _, tt := range tests {
		p, err := ParsePlatform(tt.in)
		if err != nil || FormatPlatform(p) != tt.want {
			t.Errorf("ParsePlatform(%q) = %s, %v; want %s", tt.in, FormatPlatform(p), err, tt.want)
		}
	}
	for _, bad := range []string{"", "/", "linux/", "a/b/c/d", "nonsense", "linux/amd 64"} {
		if _, err := ParsePlatform(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePlatform(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestSelectManifest(t *testing.T) {
	entry := func(name, os, arch, variant string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(name), Size: 1,
			Platform: &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}}
	}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("noplatform"), Size: 1},
		entry("attest", "unknown", "unknown", ""),
		entry("amd64", "linux", "amd64", ""),
		entry("amd64v3", "linux", "amd64", "v3"),
		entry("arm64", "linux", "arm64", "v8"),
		entry("armv6", "linux", "arm", "v6"),
		entry("win", "windows", "amd64", ""),
	}}
	tests := []struct {
		want, pick string
	}{
		{"linux/amd64", "amd64"},
		{"linux/amd64/v3", "amd64v3"},
		{"linux/amd64/v2", "amd64"},
		{"linux/arm64", "arm64"},
		{"linux/arm/v7", "armv6"}, // a v7 host runs v6
		{"windows/amd64", "win"},
	}
	for _, tt := range tests {
		p, err := ParsePlatform(tt.want)
		if err != nil {
			t.Fatal(err)
		}
		d, err := SelectManifest(idx, p)
		if err != nil || d.Digest != digest.FromString(tt.pick) {
			t.Errorf("SelectManifest(%s) = %s, %v; want %s", tt.want, d.Digest, err, tt.pick)
		}
	}
	_, err := SelectManifest(idx, ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v5"})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("arm/v5 host picked a newer variant: %v", err)
	}
}
