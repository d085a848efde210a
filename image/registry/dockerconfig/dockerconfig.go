// Package dockerconfig reads and writes the docker CLI's config.json as a
// credential store, with its credential helpers. It is a leaf (the standard
// library only): the estiba CLI links it to send X-Registry-Auth, and a
// client that starts for every command must not link the registry client.
package dockerconfig

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// dockerHubKey is the key Docker uses for Docker Hub in config.json.
const dockerHubKey = "https://index.docker.io/v1/"

// dockerHub is Docker Hub's reference domain (dockerHub).
const dockerHub = "docker.io"

// Error classes, shared with the registry client (registry.ErrNotFound and
// registry.ErrInvalid are these).
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
)

// Credential is what a user logs in with. IdentityToken, when set, is an
// OAuth2 refresh token (Docker's "identitytoken") used instead of the
// password.
type Credential struct {
	Username      string
	Password      string
	IdentityToken string
}

// IsZero reports whether c holds no credential (anonymous).
func (c Credential) IsZero() bool { return c == Credential{} }

// Path is where Docker keeps credentials: $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json.
func Path() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("docker config: %w", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// Config is a Docker CLI config file seen as a CredentialStore. As the
// docker CLI, it asks a credential helper when one is configured for the
// host (credHelpers, else credsStore; see credHelper), else reads inline
// credentials ("auths" entries with base64 "auth", or username/password, or
// identitytoken). Store and Remove go through the same helper, or rewrite
// the file atomically with mode 0600, keeping every other setting in it.
type Config struct {
	path string

	mu          sync.Mutex
	raw         map[string]json.RawMessage // the whole file, for lossless rewrite
	auths       map[string]authEntry
	credsStore  string
	credHelpers map[string]string
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// Load reads the config at path; a missing file is an empty
// config (it is created by the first Store).
func Load(path string) (*Config, error) {
	c := &Config{path: path, raw: map[string]json.RawMessage{}, auths: map[string]authEntry{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(data, &c.raw); err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	for key, dst := range map[string]any{"auths": &c.auths, "credsStore": &c.credsStore, "credHelpers": &c.credHelpers} {
		if v, ok := c.raw[key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("docker config %s: %s: %w", path, key, err)
			}
		}
	}
	if c.auths == nil {
		c.auths = map[string]authEntry{}
	}
	return c, nil
}

// Credential returns the credential stored for host (a reference domain).
func (c *Config) Credential(host string) (Credential, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.helper(host); ok {
		cred, err := h.get(configKey(host))
		if err != nil {
			return Credential{}, fmt.Errorf("credentials for %s (%s): %w", host, c.path, err)
		}
		return cred, nil
	}
	key, e, ok := c.lookup(host)
	if ok {
		cred, err := e.credential()
		if err != nil {
			return Credential{}, fmt.Errorf("docker config %s: auths[%q]: %w", c.path, key, err)
		}
		if !cred.IsZero() {
			return cred, nil
		}
	}
	return Credential{}, nil
}

// helper is the credential helper for host: credHelpers names one per
// registry (keyed by host name; Docker Hub's is "index.docker.io"), else
// credsStore one for all.
func (c *Config) helper(host string) (credHelper, bool) {
	want := normaliseKey(configKey(host))
	for k, name := range c.credHelpers {
		if name != "" && normaliseKey(k) == want {
			return credHelper{name: name}, true
		}
	}
	if c.credsStore != "" {
		return credHelper{name: c.credsStore}, true
	}
	return credHelper{}, false
}

func (e authEntry) credential() (Credential, error) {
	cred := Credential{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
	if e.Auth != "" {
		dec, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return Credential{}, fmt.Errorf("auth is not base64: %w", err)
		}
		user, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return Credential{}, errors.New("auth is not user:password")
		}
		cred.Username, cred.Password = user, pass
	}
	return cred, nil
}

// lookup finds host's entry; keys may carry a scheme and a path
// ("https://host/v1/"), as older clients wrote them.
func (c *Config) lookup(host string) (string, authEntry, bool) {
	want := configKey(host)
	if e, ok := c.auths[want]; ok {
		return want, e, true
	}
	for k, e := range c.auths {
		if normaliseKey(k) == normaliseKey(want) {
			return k, e, true
		}
	}
	return "", authEntry{}, false
}

func configKey(host string) string {
	switch host {
	case dockerHub, "index.docker.io", "registry-1.docker.io":
		return dockerHubKey
	}
	return host
}

func normaliseKey(k string) string {
	if i := strings.Index(k, "://"); i >= 0 {
		k = k[i+3:]
	}
	k, _, _ = strings.Cut(k, "/")
	switch k {
	case "index.docker.io", "registry-1.docker.io", dockerHub:
		return dockerHub
	}
	return k
}

// Store saves cred for host, for `estiba login`.
// With a credential helper the secret goes to the helper, and the file
// keeps an empty "auths" entry for host, as the docker CLI writes.
func (c *Config) Store(host string, cred Credential) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key, _, ok := c.lookup(host); ok {
		delete(c.auths, key)
	}
	if h, ok := c.helper(host); ok {
		if err := h.store(configKey(host), cred); err != nil {
			return fmt.Errorf("store credentials for %s: %w", host, err)
		}
		c.auths[configKey(host)] = authEntry{}
		return c.save()
	}
	e := authEntry{IdentityToken: cred.IdentityToken}
	if cred.Username != "" || cred.Password != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Password))
	}
	c.auths[configKey(host)] = e
	return c.save()
}

// Remove forgets host's credential, for `estiba logout`. It fails with
// ErrNotFound if there was none.
func (c *Config) Remove(host string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var herr error
	h, helped := c.helper(host)
	if helped {
		herr = h.erase(configKey(host))
		if herr != nil && !errors.Is(herr, ErrNotFound) {
			return fmt.Errorf("remove credentials for %s: %w", host, herr)
		}
	}
	key, _, ok := c.lookup(host)
	if !ok {
		if helped && herr == nil {
			return nil
		}
		return fmt.Errorf("credentials for %s: %w", host, ErrNotFound)
	}
	delete(c.auths, key)
	return c.save()
}

// save writes the file atomically: a 0600 temporary file in the same
// directory, synced, then renamed over the old one, so a crash leaves the old
// or the new config, never half of one.
func (c *Config) save() error {
	auths, err := json.Marshal(c.auths)
	if err != nil {
		return err
	}
	c.raw["auths"] = auths
	data, err := json.MarshalIndent(c.raw, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config.json.*")
	if err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after a successful rename
	err = f.Chmod(0o600)      // CreateTemp makes 0600 already; be explicit about secrets
	if err == nil {
		_, err = f.Write(append(data, '\n'))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path)
	}
	if err != nil {
		return fmt.Errorf("docker config %s: %w", c.path, err)
	}
	return nil
}
