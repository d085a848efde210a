package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/estiba/estiba/image/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func manifestPath(ref reference.Reference, target string) string {
	return "/v2/" + ref.Path + "/manifests/" + target
}

func blobPath(ref reference.Reference, d digest.Digest) string {
	return "/v2/" + ref.Path + "/blobs/" + d.String()
}

// manifestTarget is what a manifest request names: the digest when pinned,
// else the tag.
func manifestTarget(ref reference.Reference) (string, error) {
	switch {
	case ref.Digest != "":
		return ref.Digest.String(), nil
	case ref.Tag != "":
		return ref.Tag, nil
	}
	return "", fmt.Errorf("reference %s: %w: needs a tag or a digest", ref, ErrInvalid)
}

func acceptHeader() http.Header {
	return http.Header{"Accept": {strings.Join(manifestAccept, ", ")}}
}

// Resolve returns the descriptor of the manifest or index ref names. It asks
// with HEAD and falls back to a verified GET when the registry's answer is
// incomplete.
func (c *Client) Resolve(ctx context.Context, ref reference.Reference) (ocispec.Descriptor, error) {
	target, err := manifestTarget(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	resp, err := c.do(ctx, request{method: http.MethodHead, ref: ref, path: manifestPath(ref, target), header: acceptHeader()})
	if err != nil {
		// Some registries refuse HEAD (405, 400): ask again with GET. Any
		// other failure is the answer.
		var re *Error
		if errors.As(err, &re) && (re.Status == http.StatusMethodNotAllowed || re.Status == http.StatusBadRequest) {
			desc, _, gerr := c.getManifest(ctx, ref, target, "")
			return desc, gerr
		}
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	drain(resp)
	d := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	mt := mediaType(resp.Header.Get("Content-Type"))
	if ref.Digest != "" {
		d = ref.Digest
	}
	if d.Validate() != nil || resp.ContentLength < 0 || !(IsIndex(mt) || IsManifest(mt)) {
		desc, _, err := c.getManifest(ctx, ref, target, "")
		return desc, err
	}
	if resp.ContentLength > MaxManifestSize {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: manifest of %d bytes: %w", ref, resp.ContentLength, ErrUnsupported)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: resp.ContentLength}, nil
}

// FetchManifest returns the manifest or index desc describes, in ref's
// repository, after checking it against desc's digest and size.
func (c *Client) FetchManifest(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch manifest: %w: %v", ErrInvalid, err)
	}
	if desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("fetch manifest %s: %d bytes: %w", desc.Digest, desc.Size, ErrUnsupported)
	}
	got, data, err := c.getManifest(ctx, ref, desc.Digest.String(), desc.Digest)
	if err != nil {
		return nil, err
	}
	if got.Size != desc.Size {
		return nil, fmt.Errorf("fetch manifest %s: %d bytes, descriptor says %d: %w", desc.Digest, got.Size, desc.Size, ErrDigestMismatch)
	}
	return data, nil
}

// getManifest GETs a manifest and verifies it: against want when known,
// else against the Docker-Content-Digest header when the registry sends one.
func (c *Client) getManifest(ctx context.Context, ref reference.Reference, target string, want digest.Digest) (ocispec.Descriptor, []byte, error) {
	if want == "" && ref.Digest != "" {
		want = ref.Digest
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, ref: ref, path: manifestPath(ref, target), header: acceptHeader()})
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s@%s: %w", ref.Name(), target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s@%s: %w", ref.Name(), target, err)
	}
	if len(data) > MaxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s@%s: larger than %d bytes: %w", ref.Name(), target, MaxManifestSize, ErrUnsupported)
	}
	if want == "" {
		want = digest.Digest(resp.Header.Get("Docker-Content-Digest"))
		if want.Validate() != nil {
			want = digest.FromBytes(data)
		}
	}
	if !want.Algorithm().Available() {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s: algorithm %q: %w", want, want.Algorithm(), ErrUnsupported)
	}
	if got := want.Algorithm().FromBytes(data); got != want {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s@%s: content is %s, want %s: %w", ref.Name(), target, got, want, ErrDigestMismatch)
	}
	mt := mediaType(resp.Header.Get("Content-Type"))
	if !IsIndex(mt) && !IsManifest(mt) {
		mt = MediaTypeOf(data) // some registries serve application/json
	}
	if err := checkManifest(data, mt); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s@%s: %w", ref.Name(), target, err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: want, Size: int64(len(data))}, data, nil
}

// checkManifest refuses documents that are not a manifest or index of the
// type they were served as.
func checkManifest(data []byte, mt string) error {
	switch {
	case IsIndex(mt):
		_, err := ParseIndex(data, mt)
		return err
	case IsManifest(mt):
		_, err := ParseManifest(data, mt)
		return err
	case mt == mediaTypeDockerSchema1 || mt == mediaTypeDockerSchema1Signed:
		return fmt.Errorf("docker schema 1 manifests: %w (push the image again with a current client)", ErrUnsupported)
	}
	return fmt.Errorf("manifest media type %q: %w", mt, ErrUnsupported)
}

func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.TrimSpace(mt)
}

// Fetch returns the content desc describes, from offset on. Manifests and
// indexes come verified (offset applies to the verified bytes); blobs come as
// FetchBlob gives them.
func (c *Client) Fetch(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if IsIndex(desc.MediaType) || IsManifest(desc.MediaType) {
		data, err := c.FetchManifest(ctx, ref, desc)
		if err != nil {
			return nil, err
		}
		if offset < 0 || offset > int64(len(data)) {
			return nil, fmt.Errorf("fetch %s: offset %d beyond %d bytes: %w", desc.Digest, offset, len(data), ErrInvalid)
		}
		return io.NopCloser(bytes.NewReader(data[offset:])), nil
	}
	return c.FetchBlob(ctx, ref, desc, offset)
}

// FetchBlob streams the blob desc describes from ref's repository, from
// offset on. From offset 0 the reader checks digest and size and fails at EOF
// with ErrDigestMismatch; from a later offset it checks only the size, and
// the caller verifies the whole.
func (c *Client) FetchBlob(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch blob: %w: %v", ErrInvalid, err)
	}
	if !desc.Digest.Algorithm().Available() {
		return nil, fmt.Errorf("fetch blob %s: %w", desc.Digest, ErrUnsupported)
	}
	if offset < 0 || offset > desc.Size {
		return nil, fmt.Errorf("fetch blob %s: offset %d outside 0..%d: %w", desc.Digest, offset, desc.Size, ErrInvalid)
	}
	r := request{method: http.MethodGet, ref: ref, path: blobPath(ref, desc.Digest)}
	if offset > 0 {
		if offset == desc.Size {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		r.header = http.Header{"Range": {"bytes=" + strconv.FormatInt(offset, 10) + "-"}}
	}
	// A body that stops flowing would otherwise hang until the caller's
	// deadline, if it has one: a watchdog cancels the request when no byte
	// arrived for IdleTimeout.
	ctx, cancel := context.WithCancelCause(ctx)
	watchdog := time.AfterFunc(c.opts.IdleTimeout, func() {
		cancel(fmt.Errorf("blob %s: nothing received for %v: %w", desc.Digest, c.opts.IdleTimeout, ErrUnavailable))
	})
	resp, err := c.do(ctx, r)
	if err != nil {
		watchdog.Stop()
		cancel(nil)
		if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrUnavailable) {
			err = cause
		}
		return nil, fmt.Errorf("fetch blob %s: %w", desc.Digest, err)
	}
	resp.Body = &idleBody{rc: resp.Body, ctx: ctx, watchdog: watchdog, idle: c.opts.IdleTimeout, cancel: cancel}
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("fetch blob %s: asked for offset %d, got range %q: %w", desc.Digest, offset, resp.Header.Get("Content-Range"), ErrInvalid)
		}
		return &sizeReader{rc: resp.Body, left: desc.Size - offset, d: desc.Digest}, nil
	case resp.StatusCode == http.StatusOK:
		// Whole blob, also when a registry ignores Range: verify all of it
		// and skip what the caller already has.
		v := newVerifier(resp.Body, desc)
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, v, offset); err != nil {
				v.Close()
				return nil, fmt.Errorf("fetch blob %s: skip to %d: %w", desc.Digest, offset, err)
			}
		}
		return v, nil
	}
	resp.Body.Close()
	return nil, fmt.Errorf("fetch blob %s: unexpected status %d: %w", desc.Digest, resp.StatusCode, ErrInvalid)
}

// idleBody re-arms the watchdog on every read and reports its firing as
// the cause of the failed read.
type idleBody struct {
	rc       io.ReadCloser
	ctx      context.Context
	watchdog *time.Timer
	idle     time.Duration
	cancel   context.CancelCauseFunc
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.watchdog.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); cause != nil && errors.Is(cause, ErrUnavailable) {
			err = cause
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.watchdog.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// rangeStart parses the first byte of "bytes start-end/total".
func rangeStart(h string) (int64, bool) {
	h, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(h, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// verifier hashes a blob as it is read and fails at its end if the content
// is not what the descriptor promised.
type verifier struct {
	rc   io.ReadCloser
	d    digest.Digest
	dv   digest.Digester
	left int64
	err  error
}

func newVerifier(rc io.ReadCloser, desc ocispec.Descriptor) *verifier {
	return &verifier{rc: rc, d: desc.Digest, dv: desc.Digest.Algorithm().Digester(), left: desc.Size}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	// Read one byte past the promised size to detect a longer blob.
	if int64(len(p)) > v.left+1 {
		p = p[:v.left+1]
	}
	n, err := v.rc.Read(p)
	v.left -= int64(n)
	v.dv.Hash().Write(p[:n])
	switch {
	case v.left < 0:
		v.err = fmt.Errorf("blob %s: longer than its descriptor: %w", v.d, ErrDigestMismatch)
		return n - 1, v.err
	case err == io.EOF && v.left > 0:
		v.err = fmt.Errorf("blob %s: %d bytes short: %w", v.d, v.left, io.ErrUnexpectedEOF)
	case err == io.EOF && v.dv.Digest() != v.d:
		v.err = fmt.Errorf("blob %s: content is %s: %w", v.d, v.dv.Digest(), ErrDigestMismatch)
	case err != nil:
		v.err = err
	}
	if v.err != nil {
		return n, v.err
	}
	return n, nil
}

func (v *verifier) Close() error { return v.rc.Close() }

// sizeReader checks that a resumed blob ends where its descriptor says.
type sizeReader struct {
	rc   io.ReadCloser
	left int64
	d    digest.Digest
}

func (s *sizeReader) Read(p []byte) (int, error) {
	if int64(len(p)) > s.left+1 {
		p = p[:s.left+1]
	}
	n, err := s.rc.Read(p)
	s.left -= int64(n)
	if s.left < 0 {
		return n - 1, fmt.Errorf("blob %s: longer than its descriptor: %w", s.d, ErrDigestMismatch)
	}
	if err == io.EOF && s.left > 0 {
		return n, fmt.Errorf("blob %s: %d bytes short: %w", s.d, s.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (s *sizeReader) Close() error { return s.rc.Close() }

// Tags lists the tags of ref's repository, following pagination.
func (c *Client) Tags(ctx context.Context, ref reference.Reference) ([]string, error) {
	var tags []string
	r := request{method: http.MethodGet, ref: ref, path: "/v2/" + ref.Path + "/tags/list?n=1000"}
	for page := 0; page < 1000; page++ {
		resp, err := c.do(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", ref.Name(), err)
		}
		var body struct {
			Tags []string `json:"tags"`
		}
		err = jsonDecode(resp.Body, &body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", ref.Name(), err)
		}
		tags = append(tags, body.Tags...)
		next := nextLink(resp)
		if next == "" {
			return tags, nil
		}
		r.url = next
	}
	return nil, fmt.Errorf("tags of %s: too many pages: %w", ref.Name(), ErrUnsupported)
}

// nextLink resolves a `Link: <url>; rel="next"` header against the request.
func nextLink(resp *http.Response) string {
	for _, l := range resp.Header.Values("Link") {
		u, params, ok := strings.Cut(l, ";")
		if !ok || !strings.Contains(params, `rel="next"`) {
			continue
		}
		u = strings.Trim(strings.TrimSpace(u), "<>")
		if next, err := resp.Request.URL.Parse(u); err == nil {
			return next.String()
		}
	}
	return ""
}
