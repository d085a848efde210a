package registry

import (
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPlatform is the host's: linux and the architecture estiba was built
// for.
func DefaultPlatform() ocispec.Platform {
	return normalisePlatform(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
}

// ParsePlatform parses a --platform value like Docker: os/arch[/variant],
// or a lone os or architecture (the other part taken from the host).
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	for _, p := range parts {
		if !validPlatformPart(p) {
			return ocispec.Platform{}, fmt.Errorf("platform %q: %w: want os/arch[/variant]", s, ErrInvalid)
		}
	}
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if knownOS[parts[0]] {
			p = ocispec.Platform{OS: parts[0], Architecture: runtime.GOARCH}
		} else if _, ok := normaliseArch(parts[0], ""); ok {
			p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
		} else {
			return p, fmt.Errorf("platform %q: %w: unknown operating system or architecture", s, ErrInvalid)
		}
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return p, fmt.Errorf("platform %q: %w: want os/arch[/variant]", s, ErrInvalid)
	}
	return normalisePlatform(p), nil
}

// FormatPlatform prints p as os/arch[/variant].
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

var knownOS = map[string]bool{"linux": true, "windows": true, "darwin": true, "freebsd": true}

func validPlatformPart(p string) bool {
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// normaliseArch maps the aliases Docker accepts to GOARCH names and
// canonical variants.
func normaliseArch(arch, variant string) (ocispec.Platform, bool) {
	p := ocispec.Platform{Architecture: arch, Variant: variant}
	switch arch {
	case "i386", "386":
		p.Architecture = "386"
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
		if variant == "v1" {
			p.Variant = ""
		}
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if variant == "8" || variant == "v8" {
			p.Variant = ""
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			p.Variant = "v7"
		case "5", "6", "8":
			p.Variant = "v" + variant
		}
	case "ppc64le", "s390x", "riscv64", "mips64le", "mips64", "loong64", "ppc64", "mips", "mipsle", "wasm":
	default:
		return p, false
	}
	return p, true
}

func normalisePlatform(p ocispec.Platform) ocispec.Platform {
	n, _ := normaliseArch(p.Architecture, p.Variant)
	p.Architecture, p.Variant = n.Architecture, n.Variant
	return p
}

// compatibleVariants lists, best first, the variants a host of arch/variant
// runs.
func compatibleVariants(arch, variant string) []string {
	ladder := map[string][]string{
		"arm":   {"v8", "v7", "v6", "v5"},
		"amd64": {"v4", "v3", "v2", ""},
	}[arch]
	for i, v := range ladder {
		if v == variant {
			return ladder[i:]
		}
	}
	return []string{variant}
}

// SelectManifest picks from idx the manifest that best fits want: same OS
// and architecture, and the best variant want can run. Entries without a
// platform (attestations, artifacts) are never chosen.
func SelectManifest(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	want = normalisePlatform(want)
	var available []string
	for _, variant := range compatibleVariants(want.Architecture, want.Variant) {
		for _, d := range idx.Manifests {
			if d.Platform == nil {
				continue
			}
			have := normalisePlatform(*d.Platform)
			if have.OS == want.OS && have.Architecture == want.Architecture && have.Variant == variant {
				return d, nil
			}
		}
	}
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.OS != "unknown" {
			available = append(available, FormatPlatform(normalisePlatform(*d.Platform)))
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for %s (index has %s): %w",
		FormatPlatform(want), strings.Join(available, ", "), ErrNotFound)
}
