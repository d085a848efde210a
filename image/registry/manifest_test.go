package registry

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const testIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
	`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"os":"linux","architecture":"amd64"}},` +
	`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"os":"unknown","architecture":"unknown"}}]}`

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name, data, mediaType string
		want                  error
	}{
		{"oci", testManifest, ocispec.MediaTypeImageManifest, nil},
		{"served as docker", strings.Replace(testManifest, `"mediaType":"application/vnd.oci.image.manifest.v1+json",`, "", 1), MediaTypeDockerManifest, nil},
		{"unknown served type", testManifest, "", nil},
		{"type mismatch", testManifest, MediaTypeDockerManifest, ErrInvalid},
		{"index as manifest", testIndex, ocispec.MediaTypeImageManifest, ErrInvalid},
		{"not json", "{", "", ErrInvalid},
		{"schema 1", `{"schemaVersion":1,"fsLayers":[]}`, "", ErrUnsupported},
		{"schema 3", strings.Replace(testManifest, `"schemaVersion":2`, `"schemaVersion":3`, 1), "", ErrInvalid},
		{"bad digest", strings.Replace(testManifest, "sha256:44136fa3", "sha256:XX136fa3", 1), "", ErrInvalid},
		{"md5 digest", strings.Replace(testManifest, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "md5:44136fa355b3678a1146ad16f7e8649e", 1), "", ErrUnsupported},
		{"negative size", strings.Replace(testManifest, `"size":2}]`, `"size":-1}]`, 1), "", ErrInvalid},
		{"no config type", strings.Replace(testManifest, `"mediaType":"application/vnd.oci.image.config.v1+json",`, "", 1), "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.data), tt.mediaType)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("ParseManifest: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseIndex(t *testing.T) {
	idx, err := ParseIndex([]byte(testIndex), ocispec.MediaTypeImageIndex)
	if err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("ParseIndex: %v", err)
	}
	if _, err := ParseIndex([]byte(testManifest), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("manifest as index: %v", err)
	}
	if _, err := ParseIndex([]byte(testIndex), MediaTypeDockerManifestList); !errors.Is(err, ErrInvalid) {
		t.Fatalf("type mismatch: %v", err)
	}
}

func TestLayerCompression(t *testing.T) {
	tests := map[string]Compression{
		ocispec.MediaTypeImageLayer:     Uncompressed,
		ocispec.MediaTypeImageLayerGzip: Gzip,
		ocispec.MediaTypeImageLayerZstd: Zstd,
		MediaTypeDockerLayer:            Gzip,
		MediaTypeDockerForeignLayer:     Gzip,
	}
	for mt, want := range tests {
		if got, err := LayerCompression(mt); err != nil || got != want {
			t.Errorf("LayerCompression(%s) = %v, %v", mt, got, err)
		}
	}
	if _, err := LayerCompression(ocispec.MediaTypeImageConfig); !errors.Is(err, ErrUnsupported) {
		t.Errorf("config as layer: %v", err)
	}
}

// FuzzParseManifest: parsing never panics, and what parses survives a
// marshal/parse round trip.
func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{testManifest, testIndex, `{"schemaVersion":1,"fsLayers":[]}`, `{}`, `[]`, `null`,
		`{"schemaVersion":2,"manifests":null,"config":{}}`} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), ocispec.MediaTypeImageManifest)
		f.Add([]byte(s), MediaTypeDockerManifestList)
	}
	f.Fuzz(func(t *testing.T, data []byte, mediaType string) {
		if m, err := ParseManifest(data, mediaType); err == nil {
			again, _ := json.Marshal(m)
			if _, err := ParseManifest(again, m.MediaType); err != nil {
				t.Fatalf("re-marshalled manifest does not parse: %v\n%s", err, again)
			}
		}
		if idx, err := ParseIndex(data, mediaType); err == nil {
			again, _ := json.Marshal(idx)
			if _, err := ParseIndex(again, idx.MediaType); err != nil {
				t.Fatalf("re-marshalled index does not parse: %v\n%s", err, again)
			}
			_, _ = SelectManifest(idx, DefaultPlatform())
		}
	})
}
