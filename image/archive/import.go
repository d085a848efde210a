package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/estiba/estiba/image/unpack"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions shape the image Import makes.
type ImportOptions struct {
	// Changes are Dockerfile instructions applied to the generated config:
	// CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL.
	Changes []string
	Message string // history comment
	OS      string // default linux
	Arch    string // default this machine's
}

// Import turns a rootfs tarball (plain, gzip or zstd) into a single-layer
// image: the tarball is stored as the layer blob and unpacked as it streams.
func Import(ctx context.Context, r io.Reader, blobs Blobs, layers Layers, uopts unpack.Options, opts ImportOptions) (Image, error) {
	l := &loader{blobs: blobs, layers: layers, opts: uopts, files: map[string][]byte{}, loaded: map[string]*layerEntry{}}
	defer l.cleanup()
	if err := l.layer(ctx, "rootfs", 0, r); err != nil {
		return Image{}, fmt.Errorf("import: %w", err)
	}
	e := l.loaded["rootfs"]
	info, err := blobs.Info(ctx, e.desc.Digest)
	if err != nil {
		return Image{}, fmt.Errorf("import: %w", err)
	}
	e.desc.Size = info.Size
	now := time.Now().UTC()
	cfg := ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: or(opts.OS, "linux"), Architecture: or(opts.Arch, runtime.GOARCH)},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{e.res.DiffID}},
		History:  []ocispec.History{{Created: &now, CreatedBy: "estiba import", Comment: opts.Message}},
	}
	for _, c := range opts.Changes {
		if err := applyChange(&cfg.Config, c); err != nil {
			return Image{}, fmt.Errorf("import: change %q: %w", c, err)
		}
	}
	cb, _ := json.Marshal(cfg)
	img, err := l.build(ctx, cb, []*layerEntry{e})
	if err != nil {
		return Image{}, fmt.Errorf("import: %w", err)
	}
	return img, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// applyChange applies one Dockerfile instruction to an image config.
func applyChange(c *ocispec.ImageConfig, change string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(change), " ")
	arg = strings.TrimSpace(arg)
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = cmdForm(arg)
	case "ENTRYPOINT":
		c.Entrypoint = cmdForm(arg)
	case "ENV":
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			k, v, ok = strings.Cut(arg, " ")
		}
		if !ok || k == "" {
			return fmt.Errorf("ENV needs KEY=value")
		}
		c.Env = append(c.Env, k+"="+strings.Trim(strings.TrimSpace(v), `"`))
	case "WORKDIR":
		c.WorkingDir = arg
	case "USER":
		c.User = arg
	case "STOPSIGNAL":
		c.StopSignal = arg
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(arg) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		var vols []string
		if json.Unmarshal([]byte(arg), &vols) != nil {
			vols = strings.Fields(arg)
		}
		for _, v := range vols {
			c.Volumes[v] = struct{}{}
		}
	case "LABEL":
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("LABEL needs key=value")
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[k] = strings.Trim(v, `"`)
	default:
		return fmt.Errorf("unsupported instruction %q", instr)
	}
	return nil
}

// cmdForm parses the exec form (JSON array) or wraps the shell form.
func cmdForm(arg string) []string {
	var v []string
	if json.Unmarshal([]byte(arg), &v) == nil {
		return v
	}
	return []string{"/bin/sh", "-c", arg}
}
