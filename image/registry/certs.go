package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// hostClient returns an HTTP client with the TLS files CertsDir holds for
// ep's host, or nil when there are none.
func (c *Client) hostClient(ep *endpoint) (*http.Client, error) {
	if c.opts.CertsDir == "" {
		return nil, nil
	}
	dir := filepath.Join(c.opts.CertsDir, ep.apiHost)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry %s: certificates: %w", ep.domain, err)
	}
	if c.opts.Transport != nil {
		return nil, fmt.Errorf("registry %s: %s has TLS files but a custom Transport is set: %w", ep.domain, dir, ErrUnsupported)
	}
	t := newTransport(ep.insec)
	if err := loadTLSFiles(t.TLSClientConfig, dir, entries); err != nil {
		return nil, fmt.Errorf("registry %s: %w", ep.domain, err)
	}
	return &http.Client{Transport: t, CheckRedirect: checkRedirect}, nil
}

// loadTLSFiles adds dir's CAs (*.crt) to the system pool and its client
// key pairs (*.cert + *.key) to conf, as Docker reads certs.d.
func loadTLSFiles(conf *tls.Config, dir string, entries []fs.DirEntry) error {
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".crt"):
			if conf.RootCAs == nil {
				pool, err := x509.SystemCertPool()
				if err != nil {
					pool = x509.NewCertPool()
				}
				conf.RootCAs = pool
			}
			pem, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if !conf.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("%s: %w: no PEM certificate", path, ErrInvalid)
			}
		case strings.HasSuffix(name, ".cert"):
			keyPath := strings.TrimSuffix(path, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(path, keyPath)
			if err != nil {
				return fmt.Errorf("client certificate %s (key %s): %w", path, keyPath, err)
			}
			conf.Certificates = append(conf.Certificates, pair)
		case strings.HasSuffix(name, ".key"):
			if _, err := os.Stat(strings.TrimSuffix(path, ".key") + ".cert"); err != nil {
				return fmt.Errorf("%s: %w: key without a .cert", path, ErrInvalid)
			}
		}
	}
	return nil
}
