// Package registry is a client for OCI distribution registries (Docker Hub,
// distribution, Harbor, …): resolve and fetch manifests and blobs, push them,
// list tags, with the registries' authentication schemes.
//
// The exported surface:
//
//	c := registry.New(registry.Options{Credentials: cfg, Insecure: []string{"reg.lan:5000"}})
//	desc, err := c.Resolve(ctx, ref)                  // tag or digest → descriptor
//	data, err := c.FetchManifest(ctx, ref, desc)      // verified manifest/index bytes
//	rc, err := c.Fetch(ctx, ref, desc, offset)        // any content, resumable blobs
//	ok, err := c.BlobExists(ctx, ref, desc)
//	ok, err := c.MountBlob(ctx, ref, fromRepo, desc)  // cross-repository mount
//	err = c.PushBlob(ctx, ref, desc, r)               // monolithic or chunked upload
//	err = c.PushManifest(ctx, ref, desc, data)        // under ref's tag, else its digest
//	tags, err := c.Tags(ctx, ref)
//	err = c.Login(ctx, host, cred)                    // check credentials
//
// Helpers: ParseManifest, ParseIndex, SelectManifest (platform choice),
// ParsePlatform, LayerCompression, and DockerConfig (~/.docker/config.json
// credentials, read and written for login/logout). image/service adapts a
// Client with service.RegistryClient. Package registrytest starts real registries for tests.
//
// Integrity: manifests are read whole (bounded by MaxManifestSize) and
// checked against their digest before being returned. Blobs stream; a blob
// read from offset 0 fails at EOF with ErrDigestMismatch if its content does
// not match, so a caller that reads to EOF never accepts bad content. A
// resumed read (offset > 0) cannot be verified here: the caller hashes the
// prefix it already has together with the rest.
//
// TLS: Options.CertsDir adds per-registry CAs and client certificates laid
// out like /etc/docker/certs.d.
//
// Transport: HTTPS by default. Plain HTTP (after HTTPS fails) only for hosts
// listed in Options.Insecure and for loopback registries, as Docker does.
// Bearer tokens are cached per scope until they expire; credentials are sent
// only to the registry's own host, never along redirects or to upload URLs
// elsewhere. Requests without a body, or with a replayable one, are retried
// a few times on transient failures (5xx, 429 with Retry-After, network
// errors); a blob body that stalls for Options.IdleTimeout fails with
// ErrUnavailable, and the caller resumes from its offset. A Client is safe
// for concurrent use and keeps connections alive; parallel blob fetches are
// the caller's choice.
//
// Errors wrap the classes ErrNotFound, ErrUnauthorized, ErrDenied,
// ErrTooManyRequests, ErrUnsupported, ErrInvalid, ErrUnavailable and
// ErrDigestMismatch; registry responses are *Error with the parsed codes.
package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/estiba/estiba/image/reference"
)

// Options configure a Client. The zero value is anonymous, HTTPS-only except
// for loopback registries.
type Options struct {
	// Credentials supplies login data per registry host; nil is anonymous.
	Credentials CredentialStore
	// Insecure lists registries ("host" or "host:port", or CIDRs such as
	// "10.0.0.0/8") reachable over plain HTTP or TLS without verification,
	// like Docker's insecure-registries.
	Insecure []string
	// Transport overrides the HTTP transport (tests, proxies).
	Transport http.RoundTripper
	// UserAgent is sent with every request.
	UserAgent string
	// ChunkSize is the largest monolithic upload; bigger blobs go up in
	// PATCH chunks of this size. Zero means 64 MiB.
	ChunkSize int64
	// Retries bounds the extra attempts after a transient failure; zero
	// means 3, negative means none.
	Retries int
	// CertsDir holds per-registry TLS files like Docker's
	// /etc/docker/certs.d: CertsDir/<host[:port]>/*.crt are extra CAs,
	// *.cert with the matching *.key are client certificates. Empty: none.
	// It needs the default transport (Transport nil).
	CertsDir string
	// IdleTimeout aborts a blob download that receives nothing for this
	// long (the caller can resume it); zero means one minute.
	IdleTimeout time.Duration
}

// Client talks to registries. Create it with New.
type Client struct {
	opts   Options
	http   *http.Client
	httpTL *http.Client // for insecure hosts: TLS without verification

	mu        sync.Mutex
	endpoints map[string]*endpoint // by reference domain
	tokens    map[string]token     // by realm, service and scope
}

// endpoint is what the client learned about one registry by pinging it.
type endpoint struct {
	ready   chan struct{} // closed once base and err are set
	base    string        // "https://host" or "http://host"
	err     error
	insec   bool
	http    *http.Client // set when the host has its own TLS files
	mu      sync.Mutex
	chal    challenge
	domain  string
	apiHost string
}

// New returns a client configured by opts.
func New(opts Options) *Client {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 64 << 20
	}
	if opts.Retries == 0 {
		opts.Retries = 3
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = time.Minute
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "estiba"
	}
	secure, insecure := opts.Transport, opts.Transport
	if secure == nil {
		secure, insecure = newTransport(false), newTransport(true)
	}
	return &Client{
		opts:      opts,
		http:      &http.Client{Transport: secure, CheckRedirect: checkRedirect},
		httpTL:    &http.Client{Transport: insecure, CheckRedirect: checkRedirect},
		endpoints: map[string]*endpoint{},
		tokens:    map[string]token{},
	}
}

func newTransport(skipVerify bool) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute, // a registry may hash a big blob before answering a PUT
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: skipVerify, MinVersion: tls.VersionTLS12}, //nolint:gosec // only for hosts the user declared insecure
	}
}

// checkRedirect bounds redirect chains. net/http already drops the
// Authorization header when a redirect leaves the registry's host, so blob
// storage (S3, CDNs) never sees registry tokens.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// apiHost maps a reference domain to the host serving its API.
func apiHost(domain string) string {
	if domain == reference.DefaultDomain {
		return "registry-1.docker.io"
	}
	return domain
}

// allowsPlainHTTP reports whether host may be reached insecurely: declared
// insecure, or on loopback (as Docker treats 127.0.0.0/8 and ::1).
func (c *Client) allowsPlainHTTP(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, s := range c.opts.Insecure {
		if s == host || s == h {
			return true
		}
		if _, n, err := net.ParseCIDR(s); err == nil && ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// endpoint returns the pinged endpoint of domain, pinging once per Client.
func (c *Client) endpoint(ctx context.Context, domain string) (*endpoint, error) {
	c.mu.Lock()
	ep, ok := c.endpoints[domain]
	if !ok {
		host := apiHost(domain)
		ep = &endpoint{ready: make(chan struct{}), domain: domain, apiHost: host, insec: c.allowsPlainHTTP(host)}
		c.endpoints[domain] = ep
		go func() {
			if ep.http, ep.err = c.hostClient(ep); ep.err != nil {
				close(ep.ready)
				return
			}
			// Detached from ctx so one caller's cancellation does not poison
			// the endpoint for others; bounded by its own timeout.
			pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ep.base, ep.err = c.ping(pctx, ep)
			close(ep.ready)
		}()
	}
	c.mu.Unlock()
	select {
	case <-ep.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if ep.err != nil {
		c.mu.Lock()
		if c.endpoints[domain] == ep {
			delete(c.endpoints, domain) // let a later call try again
		}
		c.mu.Unlock()
		return nil, ep.err
	}
	return ep, nil
}

// ping GETs /v2/ to learn the scheme and the authentication challenge.
func (c *Client) ping(ctx context.Context, ep *endpoint) (string, error) {
	schemes := []string{"https"}
	if ep.insec {
		schemes = append(schemes, "http")
	}
	var firstErr error
	for _, scheme := range schemes {
		base := scheme + "://" + ep.apiHost
		err := c.pingBase(ctx, ep, base)
		if err == nil {
			return base, nil
		}
		var re *Error
		if errors.As(err, &re) || ctx.Err() != nil {
			return "", err // an HTTP answer: the scheme works, the registry refused
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", fmt.Errorf("registry %s: %w: %v", ep.domain, ErrUnavailable, firstErr)
}

func (c *Client) pingBase(ctx context.Context, ep *endpoint, base string) error {
	var last error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 && !sleep(ctx, attempt, 0) {
			return ctx.Err()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/", nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", c.opts.UserAgent)
		resp, err := c.client(ep).Do(req)
		if err != nil {
			return err // transport failure: maybe the wrong scheme
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			drain(resp)
			return nil
		case resp.StatusCode == http.StatusUnauthorized:
			ch, ok := parseChallenge(resp.Header.Values("WWW-Authenticate"))
			drain(resp)
			if !ok {
				return fmt.Errorf("registry %s: 401 without a usable WWW-Authenticate challenge: %w", ep.domain, ErrUnsupported)
			}
			ep.setChallenge(ch)
			return nil
		case transientStatus(resp.StatusCode):
			last = responseError(resp)
			continue
		default:
			return responseError(resp)
		}
	}
	return last
}

func (c *Client) client(ep *endpoint) *http.Client {
	if ep.http != nil {
		return ep.http
	}
	if ep.insec {
		return c.httpTL
	}
	return c.http
}

func (ep *endpoint) challenge() challenge {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.chal
}

func (ep *endpoint) setChallenge(ch challenge) {
	ep.mu.Lock()
	ep.chal = ch
	ep.mu.Unlock()
}

// request describes one registry API call.
type request struct {
	method string
	ref    reference.Reference
	path   string // below base, e.g. "/v2/library/alpine/manifests/latest"
	url    string // absolute, overriding path (upload locations)
	header http.Header
	// body, if set, opens the request body; it is called again for a retry
	// only when replayable.
	body       func() (io.Reader, error)
	size       int64 // Content-Length when body is set
	replayable bool
	push       bool                  // needs push access to ref's repository
	extra      []reference.Reference // repositories also read (mount source)
}

// do sends r, authenticating and retrying as needed. A response with status
// >= 400 becomes an *Error; any other is returned with its body open.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	ep, err := c.endpoint(ctx, r.ref.Domain)
	if err != nil {
		return nil, err
	}
	scopes := r.scopes()
	reauthed := false
	var last error
	var wait time.Duration
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, ep, r, scopes)
		if err == nil && resp.StatusCode == http.StatusUnauthorized && !reauthed && (r.body == nil || r.replayable) {
			// The token expired or lacked a scope: learn the new challenge,
			// forget the cached token and try once more.
			if ch, ok := parseChallenge(resp.Header.Values("WWW-Authenticate")); ok {
				ep.setChallenge(ch)
				scopes = mergeScopes(scopes, ch.params["scope"])
			}
			c.forgetToken(ep, scopes)
			drain(resp)
			reauthed = true
			continue
		}
		retry := attempt < c.opts.Retries && (r.body == nil || r.replayable) && ctx.Err() == nil
		switch {
		case err != nil && retry && transientError(err):
			last = err
		case err != nil:
			return nil, fmt.Errorf("%s %s: %w", r.method, redactURL(r.target(ep)), err)
		case resp.StatusCode >= 400 && retry && transientStatus(resp.StatusCode):
			wait = retryAfter(resp)
			last = responseError(resp)
		case resp.StatusCode >= 400:
			return nil, responseError(resp)
		default:
			return resp, nil
		}
		if !sleep(ctx, attempt+1, wait) {
			return nil, fmt.Errorf("%w (after %v)", ctx.Err(), last)
		}
	}
}

func (r request) target(ep *endpoint) string {
	if r.url != "" {
		return r.url
	}
	return ep.base + r.path
}

func (c *Client) send(ctx context.Context, ep *endpoint, r request, scopes []string) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		b, err := r.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.target(ep), body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.ContentLength = r.size
		if r.size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	// Credentials go only to the registry itself, not to an upload or
	// pagination URL on another host (such URLs carry their own grant).
	if sameHost(req.URL, ep.base) {
		if err := c.authorize(ctx, ep, req, scopes); err != nil {
			return nil, err
		}
	}
	return c.client(ep).Do(req)
}

// sameHost reports whether u is on the host of base, default ports
// made explicit.
func sameHost(u *url.URL, base string) bool {
	b, err := url.Parse(base)
	if err != nil {
		return false
	}
	return u.Scheme == b.Scheme && strings.EqualFold(hostPort(u), hostPort(b))
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "http" {
		return u.Host + ":80"
	}
	return u.Host + ":443"
}

func (r request) scopes() []string {
	actions := "pull"
	if r.push {
		actions = "pull,push"
	}
	s := []string{"repository:" + r.ref.Path + ":" + actions}
	for _, e := range r.extra {
		s = append(s, "repository:"+e.Path+":pull")
	}
	return s
}

func mergeScopes(have []string, add string) []string {
	for _, s := range strings.Fields(add) {
		found := false
		for _, h := range have {
			found = found || h == s
		}
		if !found {
			have = append(have, s)
		}
	}
	return have
}

func transientStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusInternalServerError ||
		code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

func transientError(err error) bool {
	var certErr *tls.CertificateVerificationError
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &certErr) {
		return false // retrying cannot help
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// sleep waits before retry attempt n (100ms, 400ms, 1.6s, …, or at least
// what the server asked for, up to maxRetryWait) unless ctx ends.
func sleep(ctx context.Context, n int, atLeast time.Duration) bool {
	d := 100 * time.Millisecond << (2 * (n - 1))
	d = min(max(d, atLeast), maxRetryWait)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxRetryWait bounds one wait between attempts: longer waits a server
// asks for are better left to the caller.
const maxRetryWait = 10 * time.Second

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(resp *http.Response) time.Duration {
	n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// drain discards a small rest of the body so the connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
