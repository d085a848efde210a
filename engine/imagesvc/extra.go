package imagesvc

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/estiba/estiba/engine/api"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/image/reference"
	"github.com/estiba/estiba/image/registry"
	"github.com/estiba/estiba/image/service"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var _ api.ImagesExtra = (*Images)(nil)

type clientKey struct{}

// client is the registry client for this request: one carrying the
// client's X-Registry-Auth credential when withClient put it there.
func (r Registry) client(ctx context.Context) *registry.Client {
	if c, ok := ctx.Value(clientKey{}).(*registry.Client); ok {
		return c
	}
	return r.C
}

// Push uploads a blob or manifest (the service's Pusher).
func (r Registry) Push(ctx context.Context, ref string, desc ocispec.Descriptor, rd io.Reader) error {
	p, err := reference.Parse(ref)
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
	}
	if fn, ok := ctx.Value(pushTickKey{}).(func(ocispec.Descriptor, int64)); ok {
		rd = &countingReader{r: rd, tick: func(n int64) { fn(desc, n) }}
	}
	return r.client(ctx).Push(ctx, p, desc, rd)
}

// pushTickKey carries Push's byte counter to Registry.Push, which the
// service calls per blob.
type pushTickKey struct{}

type countingReader struct {
	r    io.Reader
	n    int64
	tick func(total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.tick(c.n)
	}
	return n, err
}

// overlay answers one host with the request's credential, the others from
// the daemon's own store.
type overlay struct {
	host string
	cred registry.Credential
	rest registry.CredentialStore
}

func (o overlay) Credential(host string) (registry.Credential, error) {
	if host == o.host {
		return o.cred, nil
	}
	if o.rest == nil {
		return registry.Credential{}, nil
	}
	return o.rest.Credential(host)
}

// RegistryHost maps a Docker server address ("https://index.docker.io/v1/",
// "localhost:5000", "https://reg.example/") to the reference domain the
// registry client keys credentials by.
func RegistryHost(addr string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(addr, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

func credentialOf(a types.AuthConfig) registry.Credential {
	return registry.Credential{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
}

// withClient returns ctx carrying a registry client that uses the
// request's credential (if it sent one) for ref's registry.
func (i *Images) withClient(ctx context.Context, ref string) context.Context {
	a, ok := api.RegistryAuth(ctx)
	if !ok || credentialOf(a).IsZero() {
		return ctx
	}
	p, err := reference.Parse(ref)
	if err != nil {
		return ctx
	}
	host := p.Domain
	if a.ServerAddress != "" && RegistryHost(a.ServerAddress) != host {
		return ctx // a credential for another registry
	}
	opts := i.RegistryOptions
	opts.Credentials = overlay{host: host, cred: credentialOf(a), rest: opts.Credentials}
	return context.WithValue(ctx, clientKey{}, registry.New(opts))
}

// Push is docker push, with Docker's progress lines.
func (i *Images) Push(ctx context.Context, ref string, w io.Writer) error {
	name, err := service.Normalize(ref)
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
	}
	img, err := i.S.Inspect(ctx, name)
	if err != nil {
		return classify(err, ref)
	}
	tag := name[strings.LastIndex(name, ":")+1:]
	emit(w, types.JSONMessage{Status: "The push refers to repository [" + strings.TrimSuffix(name, ":"+tag) + "]"})
	pp := newPushProgress(w, img)
	err = i.S.Push(context.WithValue(i.withClient(ctx, name), pushTickKey{}, pp.sent), name, pp.report)
	if err != nil {
		return classify(err, ref)
	}
	emit(w, types.JSONMessage{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, img.Manifest.Digest, img.Manifest.Size)})
	return nil
}

func shortID(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// Save is docker save.
func (i *Images) Save(ctx context.Context, refs []string, w io.Writer) error {
	for _, r := range refs {
		if _, err := i.S.Inspect(ctx, r); err != nil {
			return classify(err, r)
		}
	}
	return classify(i.S.Save(ctx, w, refs), strings.Join(refs, " "))
}

// History is docker history.
func (i *Images) History(ctx context.Context, ref string) ([]types.ImageHistoryItem, error) {
	h, err := i.S.History(ctx, ref)
	if err != nil {
		return nil, classify(err, ref)
	}
	out := make([]types.ImageHistoryItem, 0, len(h))
	for _, e := range h {
		item := types.ImageHistoryItem{ID: "<missing>", CreatedBy: e.CreatedBy, Comment: e.Comment, Size: e.Size, Tags: familiar(e.Names)}
		if e.ID != "" {
			item.ID = string(e.ID)
		}
		if !e.Created.IsZero() {
			item.Created = e.Created.Unix()
		}
		if len(item.Tags) == 0 {
			item.Tags = nil
		}
		out = append(out, item)
	}
	return out, nil
}

// Prune is docker image prune.
func (i *Images) Prune(ctx context.Context, all bool) (*types.PruneReport, error) {
	removed, freed, err := i.S.PruneImages(ctx, all)
	rep := &types.PruneReport{SpaceReclaimed: uint64(freed)}
	for _, r := range removed {
		for _, n := range r.Untagged {
			rep.ImagesDeleted = append(rep.ImagesDeleted, types.ImageDeleteItem{Untagged: service.Familiar(n)})
		}
		for _, d := range r.Deleted {
			rep.ImagesDeleted = append(rep.ImagesDeleted, types.ImageDeleteItem{Deleted: string(d)})
		}
	}
	return rep, err
}

// Login is docker login's check: the registry must accept the credential.
func (i *Images) Login(ctx context.Context, a types.AuthConfig) (*types.AuthResponse, error) {
	host := RegistryHost(a.ServerAddress)
	c := i.Registry.C
	if c == nil {
		c = registry.New(i.RegistryOptions)
	}
	if err := c.Login(ctx, host, credentialOf(a)); err != nil {
		return nil, loginError(err, host)
	}
	return &types.AuthResponse{Status: "Login Succeeded"}, nil
}

// ProgressBar is Docker's progress text: "[====>      ]  1.2MB/3.4MB".
func ProgressBar(current, total int64) string {
	const width = 50
	n := 0
	if total > 0 {
		n = int(min(current, total) * width / total)
	}
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", bar, humanSize(current), humanSize(total))
}

func humanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB"} {
		if f < 1000 {
			return fmt.Sprintf("%.4g%s", f, u)
		}
		f /= 1000
	}
	return fmt.Sprintf("%.4gTB", f)
}

// throttle limits progress ticks per layer: the fetcher reports every
// read, and a line per 32 KiB would cost the pull more than it tells.
type throttle struct {
	every time.Duration
	last  map[string]time.Time
}

func newThrottle(every time.Duration) *throttle {
	return &throttle{every: every, last: map[string]time.Time{}}
}

// due reports whether key may tick now (and records that it did).
func (t *throttle) due(key string) bool {
	now := time.Now()
	if now.Sub(t.last[key]) < t.every {
		return false
	}
	t.last[key] = now
	return true
}

// pushProgress turns the service's per-blob reports and the bytes the
// registry client reads into Docker's push lines: Pushing with
// a bar, then Pushed or Layer already exists (nothing was read: the
// registry had the blob).
type pushProgress struct {
	mu    sync.Mutex
	w     io.Writer
	img   service.Image
	bytes map[string]int64
	tick  *throttle
}

func newPushProgress(w io.Writer, img service.Image) *pushProgress {
	return &pushProgress{w: w, img: img, bytes: map[string]int64{}, tick: newThrottle(100 * time.Millisecond)}
}

// layer reports whether d is a layer (config and manifest are not shown).
func (p *pushProgress) layer(d string) bool {
	return d != string(p.img.ID) && d != string(p.img.Manifest.Digest)
}

// sent is called (possibly from the HTTP transport's goroutine) as blob
// bytes are read.
func (p *pushProgress) sent(d ocispec.Descriptor, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytes[string(d.Digest)] = n
	if !p.layer(string(d.Digest)) || (n < d.Size && !p.tick.due(string(d.Digest))) {
		return
	}
	emit(p.w, types.JSONMessage{ID: shortID(string(d.Digest)), Status: "Pushing",
		Progress: ProgressBar(n, d.Size), ProgressDetail: &types.ProgressDetail{Current: n, Total: d.Size}})
}

func (p *pushProgress) report(pr service.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := string(pr.Layer)
	if !p.layer(d) || pr.Status != "done" {
		return
	}
	status := "Pushed"
	if p.bytes[d] == 0 {
		status = "Layer already exists"
	}
	emit(p.w, types.JSONMessage{ID: shortID(d), Status: status})
}
