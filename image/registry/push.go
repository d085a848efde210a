package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/estiba/estiba/image/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BlobExists reports whether ref's repository holds the blob desc describes.
// It asks with push scope, as it is the first step of an upload.
func (c *Client) BlobExists(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) (bool, error) {
	resp, err := c.do(ctx, request{method: http.MethodHead, ref: ref, path: blobPath(ref, desc.Digest), push: true})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check blob %s: %w", desc.Digest, err)
	}
	drain(resp)
	return true, nil
}

// MountBlob asks the registry to link the blob desc describes from the
// repository from into ref's, without uploading it. It reports false when the
// registry declined (the caller then uploads); from must be on ref's registry.
func (c *Client) MountBlob(ctx context.Context, ref, from reference.Reference, desc ocispec.Descriptor) (bool, error) {
	if from.Domain != ref.Domain {
		return false, fmt.Errorf("mount %s from %s: %w: different registries", desc.Digest, from.Name(), ErrInvalid)
	}
	q := url.Values{"mount": {desc.Digest.String()}, "from": {from.Path}}
	resp, err := c.do(ctx, request{method: http.MethodPost, ref: ref, push: true, extra: []reference.Reference{from},
		path: "/v2/" + ref.Path + "/blobs/uploads/?" + q.Encode()})
	if err != nil {
		return false, fmt.Errorf("mount %s from %s: %w", desc.Digest, from.Name(), err)
	}
	drain(resp)
	if resp.StatusCode == http.StatusCreated {
		return true, nil
	}
	// 202: the registry opened an ordinary upload instead; cancel it so it
	// does not linger until the registry's upload purge.
	if loc, err := location(resp); err == nil {
		if dresp, err := c.do(ctx, request{method: http.MethodDelete, ref: ref, url: loc, push: true}); err == nil {
			drain(dresp)
		}
	}
	return false, nil
}

// PushBlob uploads the blob desc describes, read from r, into ref's
// repository; it does nothing if the blob is already there (without reading
// r). Blobs up to Options.ChunkSize go up in one PUT, larger ones in chunks.
// r must yield exactly desc.Size bytes of content matching desc.Digest.
func (c *Client) PushBlob(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, r io.Reader) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("push blob: %w: %v", ErrInvalid, err)
	}
	if desc.Size < 0 {
		return fmt.Errorf("push blob %s: %w: unknown size", desc.Digest, ErrInvalid)
	}
	if ok, err := c.BlobExists(ctx, ref, desc); err != nil || ok {
		return err
	}
	loc, err := c.startUpload(ctx, ref)
	if err != nil {
		return fmt.Errorf("push blob %s: %w", desc.Digest, err)
	}
	dv := desc.Digest.Algorithm().Digester()
	body := io.TeeReader(io.LimitReader(r, desc.Size), dv.Hash())
	if desc.Size > c.opts.ChunkSize {
		err = c.uploadChunked(ctx, ref, desc, loc, body, dv)
	} else {
		err = c.uploadMonolithic(ctx, ref, desc, loc, body, dv)
	}
	if err != nil {
		c.cancelUpload(ref, loc)
		return fmt.Errorf("push blob %s: %w", desc.Digest, err)
	}
	return nil
}

func (c *Client) startUpload(ctx context.Context, ref reference.Reference) (string, error) {
	resp, err := c.do(ctx, request{method: http.MethodPost, ref: ref, path: "/v2/" + ref.Path + "/blobs/uploads/", push: true,
		body: func() (io.Reader, error) { return http.NoBody, nil }, replayable: true})
	if err != nil {
		return "", fmt.Errorf("start upload: %w", err)
	}
	drain(resp)
	return location(resp)
}

func (c *Client) uploadMonolithic(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, loc string, body io.Reader, dv digest.Digester) error {
	u, err := withDigest(loc, desc.Digest)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, request{method: http.MethodPut, ref: ref, url: u, push: true, size: desc.Size,
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   func() (io.Reader, error) { return &checkedReader{r: body, dv: dv, desc: desc}, nil }})
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// uploadChunked PATCHes desc.Size bytes in chunks, then closes the upload
// with a PUT once the local digest is known to be right.
func (c *Client) uploadChunked(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, loc string, body io.Reader, dv digest.Digester) error {
	for off := int64(0); off < desc.Size; {
		n := min(c.opts.ChunkSize, desc.Size-off)
		chunk := &exactReader{r: io.LimitReader(body, n), left: n}
		resp, err := c.do(ctx, request{method: http.MethodPatch, ref: ref, url: loc, push: true, size: n,
			header: http.Header{
				"Content-Type":  {"application/octet-stream"},
				"Content-Range": {strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)},
			},
			body: func() (io.Reader, error) { return chunk, nil }})
		if err != nil {
			return fmt.Errorf("chunk at %d: %w", off, err)
		}
		drain(resp)
		if loc, err = location(resp); err != nil {
			return err
		}
		off += n
	}
	if got := dv.Digest(); got != desc.Digest {
		return fmt.Errorf("content is %s: %w", got, ErrDigestMismatch)
	}
	u, err := withDigest(loc, desc.Digest)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, request{method: http.MethodPut, ref: ref, url: u, push: true,
		body: func() (io.Reader, error) { return http.NoBody, nil }, replayable: true})
	if err != nil {
		return fmt.Errorf("commit upload: %w", err)
	}
	drain(resp)
	return nil
}

// cancelUpload deletes an unfinished upload, best effort and detached from
// the (maybe cancelled) caller's context.
func (c *Client) cancelUpload(ref reference.Reference, loc string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := c.do(ctx, request{method: http.MethodDelete, ref: ref, url: loc, push: true}); err == nil {
		drain(resp)
	}
}

// location resolves the Location header of an upload response.
func location(resp *http.Response) (string, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return "", fmt.Errorf("%s %s: %w: no Location header", resp.Request.Method, redactURL(resp.Request.URL.String()), ErrInvalid)
	}
	u, err := resp.Request.URL.Parse(l)
	if err != nil {
		return "", fmt.Errorf("upload location %q: %w: %v", l, ErrInvalid, err)
	}
	return u.String(), nil
}

func withDigest(loc string, d digest.Digest) (string, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload location: %w: %v", ErrInvalid, err)
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// checkedReader fails the upload before its end if the content turns out
// short or with the wrong digest, so the registry never commits it.
type checkedReader struct {
	r    io.Reader
	dv   digest.Digester
	desc ocispec.Descriptor
	n    int64
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		if c.n != c.desc.Size {
			return n, fmt.Errorf("content is %d bytes, want %d: %w", c.n, c.desc.Size, io.ErrUnexpectedEOF)
		}
		if got := c.dv.Digest(); got != c.desc.Digest {
			return n, fmt.Errorf("content is %s: %w", got, ErrDigestMismatch)
		}
	}
	return n, err
}

// exactReader fails if its source ends before left bytes.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("content %d bytes short: %w", e.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

// PushManifest uploads a manifest or index under ref's tag, or under its
// digest when ref has no tag (children of an index). data must match desc.
func (c *Client) PushManifest(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, data []byte) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("push manifest: %w: %v", ErrInvalid, err)
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest || int64(len(data)) != desc.Size {
		return fmt.Errorf("push manifest %s: content is %s (%d bytes): %w", desc.Digest, got, len(data), ErrDigestMismatch)
	}
	if err := checkManifest(data, desc.MediaType); err != nil {
		return fmt.Errorf("push manifest %s: %w", desc.Digest, err)
	}
	target := desc.Digest.String()
	if ref.Tag != "" {
		target = ref.Tag
	}
	resp, err := c.do(ctx, request{method: http.MethodPut, ref: ref, path: manifestPath(ref, target), push: true,
		header: http.Header{"Content-Type": {desc.MediaType}}, size: int64(len(data)), replayable: true,
		body: func() (io.Reader, error) { return bytes.NewReader(data), nil }})
	if err != nil {
		return fmt.Errorf("push manifest %s to %s: %w", desc.Digest, target, err)
	}
	drain(resp)
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" && digest.Digest(d) != desc.Digest {
		return fmt.Errorf("push manifest %s: registry stored %s: %w", desc.Digest, d, ErrDigestMismatch)
	}
	return nil
}

// Push uploads content of any kind: manifests and indexes (read whole, up to
// MaxManifestSize) with PushManifest, everything else with PushBlob.
func (c *Client) Push(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, r io.Reader) error {
	if !IsIndex(desc.MediaType) && !IsManifest(desc.MediaType) {
		return c.PushBlob(ctx, ref, desc, r)
	}
	if desc.Size > MaxManifestSize {
		return fmt.Errorf("push manifest %s: %d bytes: %w", desc.Digest, desc.Size, ErrUnsupported)
	}
	data, err := io.ReadAll(io.LimitReader(r, desc.Size+1))
	if err != nil {
		return fmt.Errorf("push manifest %s: %w", desc.Digest, err)
	}
	return c.PushManifest(ctx, ref, desc, data)
}
