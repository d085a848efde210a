package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/estiba/estiba/image/registry/dockerconfig"
)

// Credential is what a user logs in with (see dockerconfig.Credential).
type Credential = dockerconfig.Credential

// DockerConfig is the docker CLI's config.json as a CredentialStore (see
// dockerconfig.Config).
type DockerConfig = dockerconfig.Config

// LoadDockerConfig reads the docker config at path (see dockerconfig.Load).
func LoadDockerConfig(path string) (*DockerConfig, error) { return dockerconfig.Load(path) }

// DockerConfigPath is where Docker keeps credentials (see dockerconfig.Path).
func DockerConfigPath() (string, error) { return dockerconfig.Path() }

// CredentialStore supplies the credential for a registry host (a reference
// domain such as "docker.io" or "localhost:5000"). No credential is the zero
// Credential and a nil error.
type CredentialStore interface {
	Credential(host string) (Credential, error)
}

// challenge is a parsed WWW-Authenticate header.
type challenge struct {
	scheme string // "basic" or "bearer"; "" when the registry is open
	params map[string]string
}

// parseChallenge picks the first Bearer or Basic challenge from headers.
func parseChallenge(headers []string) (challenge, bool) {
	for _, h := range headers {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
		scheme = strings.ToLower(scheme)
		if scheme == "bearer" || scheme == "basic" {
			return challenge{scheme: scheme, params: parseParams(rest)}, true
		}
	}
	return challenge{}, false
}

// parseParams parses `k="v", k2=v2` auth-params, honouring quoted commas and
// backslash escapes.
func parseParams(s string) map[string]string {
	params := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return params
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			val, s = b.String(), s[min(i+1, len(s)):]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		params[key] = val
	}
}

// token is a cached bearer token.
type token struct {
	value   string
	expires time.Time
}

func tokenKey(ch challenge, scopes []string) string {
	s := append([]string(nil), scopes...)
	sort.Strings(s)
	return ch.params["realm"] + "\x00" + ch.params["service"] + "\x00" + strings.Join(s, " ")
}

// authorize sets req's Authorization header for the endpoint's challenge.
func (c *Client) authorize(ctx context.Context, ep *endpoint, req *http.Request, scopes []string) error {
	ch := ep.challenge()
	switch ch.scheme {
	case "":
		return nil
	case "basic":
		cred, err := c.credential(ep.domain)
		if err != nil {
			return err
		}
		if cred.Username != "" {
			req.SetBasicAuth(cred.Username, cred.Password)
		}
		return nil
	}
	tok, err := c.bearer(ctx, ep, ch, scopes)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

func (c *Client) credential(domain string) (Credential, error) {
	if c.opts.Credentials == nil {
		return Credential{}, nil
	}
	cred, err := c.opts.Credentials.Credential(domain)
	if err != nil {
		return Credential{}, fmt.Errorf("credentials for %s: %w", domain, err)
	}
	return cred, nil
}

// bearer returns a token for scopes, from the cache or the token server.
func (c *Client) bearer(ctx context.Context, ep *endpoint, ch challenge, scopes []string) (string, error) {
	key := tokenKey(ch, scopes)
	c.mu.Lock()
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && time.Now().Before(t.expires) {
		return t.value, nil
	}
	cred, err := c.credential(ep.domain)
	if err != nil {
		return "", err
	}
	t, err = c.fetchToken(ctx, ep, ch, scopes, cred)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.tokens[key] = t
	c.mu.Unlock()
	return t.value, nil
}

func (c *Client) forgetToken(ep *endpoint, scopes []string) {
	key := tokenKey(ep.challenge(), scopes)
	c.mu.Lock()
	delete(c.tokens, key)
	c.mu.Unlock()
}

// fetchToken runs the distribution token flow: GET realm?service&scope with
// Basic credentials, or the OAuth2 refresh-token POST for identity tokens.
func (c *Client) fetchToken(ctx context.Context, ep *endpoint, ch challenge, scopes []string, cred Credential) (token, error) {
	realm, err := url.Parse(ch.params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") {
		return token{}, fmt.Errorf("registry %s: bad token realm %q: %w", ep.domain, ch.params["realm"], ErrUnsupported)
	}
	q := url.Values{}
	if s := ch.params["service"]; s != "" {
		q.Set("service", s)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	var req *http.Request
	if cred.IdentityToken != "" {
		q.Set("grant_type", "refresh_token")
		q.Set("refresh_token", cred.IdentityToken)
		q.Set("client_id", c.opts.UserAgent)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(q.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		if cred.Username != "" {
			q.Set("account", cred.Username)
		}
		realm.RawQuery = mergeQuery(realm.RawQuery, q)
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
		if err == nil && cred.Username != "" {
			req.SetBasicAuth(cred.Username, cred.Password)
		}
	}
	if err != nil {
		return token{}, err
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.client(ep).Do(req)
	if err != nil {
		return token{}, fmt.Errorf("token from %s: %w", realm.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return token{}, fmt.Errorf("token from %s: %w", realm.Host, responseError(resp))
	}
	defer resp.Body.Close()
	return decodeToken(resp.Body)
}

func mergeQuery(raw string, add url.Values) string {
	if raw == "" {
		return add.Encode()
	}
	return raw + "&" + add.Encode()
}

// minTokenLife is the lifetime the token spec says to assume when a server
// gives none; tokens are dropped a little before they expire.
const (
	minTokenLife = 60 * time.Second
	tokenSlack   = 5 * time.Second
)

func decodeToken(r io.Reader) (token, error) {
	var body struct {
		Token       string    `json:"token"`
		AccessToken string    `json:"access_token"`
		ExpiresIn   int       `json:"expires_in"`
		IssuedAt    time.Time `json:"issued_at"`
	}
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&body); err != nil {
		return token{}, fmt.Errorf("token response: %w: %v", ErrInvalid, err)
	}
	t := token{value: body.Token}
	if t.value == "" {
		t.value = body.AccessToken
	}
	if t.value == "" {
		return token{}, fmt.Errorf("token response: %w: no token", ErrInvalid)
	}
	life := time.Duration(body.ExpiresIn) * time.Second
	if life < minTokenLife {
		life = minTokenLife
	}
	issued := body.IssuedAt
	if issued.IsZero() || issued.After(time.Now()) {
		issued = time.Now()
	}
	t.expires = issued.Add(life - tokenSlack)
	return t, nil
}

// Login checks cred against the registry at host (a reference domain): the
// registry's /v2/ endpoint for Basic, the token server for Bearer. It fails
// with ErrUnauthorized when the registry refuses the credential.
func (c *Client) Login(ctx context.Context, host string, cred Credential) error {
	ep, err := c.endpoint(ctx, host)
	if err != nil {
		return err
	}
	ch := ep.challenge()
	switch ch.scheme {
	case "":
		return nil // an open registry accepts anyone
	case "bearer":
		_, err := c.fetchToken(ctx, ep, ch, nil, cred)
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.base+"/v2/", nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(cred.Username, cred.Password)
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.client(ep).Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login to %s: %w", host, responseError(resp))
	}
	drain(resp)
	return nil
}
