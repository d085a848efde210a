// Package registrytest starts real registries (Debian's docker-registry,
// distribution 2.8) for tests, and builds test images to push into them.
//
//	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.AuthToken})
//	// reg.Host is "127.0.0.1:port", plain HTTP; reg.Username/Password log in.
//
// Options: Auth (none, htpasswd Basic, or bearer tokens from a token server
// run in the test), TLS (self-signed, CA in Registry.CACert) and ClientCerts
// (mutual TLS). NewImage and NewIndex build images with real gzip tar layers
// and matching configs. Each registry listens on a free loopback port, keeps
// its storage and config in t.TempDir(), and is stopped in t.Cleanup (it is
// also killed if the test binary dies). Tests skip when docker-registry is
// not installed (CI installs it).
package registrytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"golang.org/x/crypto/bcrypt"
)

// Command is the registry binary the tests run.
const Command = "docker-registry"

// Auth selects how the registry authenticates clients.
type Auth int

const (
	// AuthNone is an open registry.
	AuthNone Auth = iota
	// AuthBasic is htpasswd (bcrypt) Basic authentication.
	AuthBasic
	// AuthToken is the bearer-token flow against a token server run by the
	// test, issuing ES256 JWTs with an x5c chain the registry trusts.
	AuthToken
)

// Options configure Start.
type Options struct {
	Auth Auth
	// TLS serves HTTPS with a self-signed certificate for 127.0.0.1 and
	// localhost (its PEM in Registry.CACert) instead of plain HTTP.
	TLS bool
	// ClientCerts (with TLS) makes the registry require a client
	// certificate; Registry.ClientCert and ClientKey hold one it accepts.
	ClientCerts bool
}

// Registry is a running test registry.
type Registry struct {
	// Host is "127.0.0.1:port", served over plain HTTP.
	Host string
	// Username and Password are accepted by AuthBasic and AuthToken
	// registries.
	Username, Password string
	// Dir holds the registry's config, storage and log.
	Dir string
	// Tokens is the token server of an AuthToken registry, else nil.
	Tokens *TokenServer
	// CACert is the PEM certificate of a TLS registry, else nil.
	CACert []byte
	// ClientCert and ClientKey (PEM) are accepted by a ClientCerts registry.
	ClientCert, ClientKey []byte

	cmd  *exec.Cmd
	done chan error
}

// Start runs a registry configured by opts until t ends.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	testutil.RequiresCommand(t, Command)
	r := &Registry{Dir: t.TempDir(), Username: "estiba", Password: "s3cret-" + randomHex(4)}
	auth, err := r.authConfig(t, opts.Auth)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	if opts.TLS {
		tlsConf, err := r.tlsConfig(opts.ClientCerts)
		if err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		auth = tlsConf + auth
	}
	var lastErr error
	// A free port can be taken between probing and binding; try again then.
	for range 3 {
		if lastErr = r.start(t, auth); lastErr == nil {
			return r
		}
	}
	t.Fatalf("registrytest: %v\n%s", lastErr, r.log())
	return nil
}

func (r *Registry) authConfig(t testing.TB, a Auth) (string, error) {
	switch a {
	case AuthNone:
		return "", nil
	case AuthBasic:
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			return "", err
		}
		path := filepath.Join(r.Dir, "htpasswd")
		if err := os.WriteFile(path, []byte(r.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return "", err
		}
		return fmt.Sprintf("auth:\n  htpasswd:\n    realm: estiba-test\n    path: %s\n", path), nil
	case AuthToken:
		ts, err := newTokenServer(r.Username, r.Password)
		if err != nil {
			return "", err
		}
		t.Cleanup(ts.close)
		r.Tokens = ts
		bundle := filepath.Join(r.Dir, "root.pem")
		if err := os.WriteFile(bundle, ts.certPEM, 0o600); err != nil {
			return "", err
		}
		return fmt.Sprintf("auth:\n  token:\n    realm: %s/token\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			ts.URL, ts.Service, ts.Issuer, bundle), nil
	}
	return "", fmt.Errorf("unknown auth mode %d", a)
}

func (r *Registry) start(t testing.TB, auth string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	r.Host = fmt.Sprintf("127.0.0.1:%d", port)
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
%s`, filepath.Join(r.Dir, "data"), r.Host, randomHex(16), auth)
	scheme := "http"
	if r.CACert != nil {
		scheme = "https"
	}
	cfgPath := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(r.Dir, "registry.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(Command, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The registry dies with the test binary even if cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Command, err)
	}
	r.cmd, r.done = cmd, make(chan error, 1)
	go func() { r.done <- cmd.Wait() }()
	if err := r.waitReady(scheme); err != nil {
		r.stop()
		return err
	}
	t.Cleanup(r.stop)
	return nil
}

func (r *Registry) waitReady(scheme string) error {
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	if r.CACert != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(r.CACert)
		conf := &tls.Config{RootCAs: pool}
		if r.ClientCert != nil {
			pair, err := tls.X509KeyPair(r.ClientCert, r.ClientKey)
			if err != nil {
				return err
			}
			conf.Certificates = []tls.Certificate{pair}
		}
		client.Transport = &http.Transport{TLSClientConfig: conf}
		defer client.CloseIdleConnections()
	}
	for time.Now().Before(deadline) {
		select {
		case err := <-r.done:
			r.done <- err
			return fmt.Errorf("%s exited: %v", Command, err)
		default:
		}
		resp, err := client.Get(scheme + "://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s on %s not ready after 20s", Command, r.Host)
}

// stop terminates the registry and waits for it.
func (r *Registry) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

func (r *Registry) log() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "registry.log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// Log returns the tail of the registry's log, for failure messages.
func (r *Registry) Log() string { return r.log() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Crane runs crane (from scripts/setup.sh) against the registry, for tests
// that want a second, independent client.
func Crane(ctx context.Context, t testing.TB, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("crane")
	if err != nil {
		path = "/usr/local/lib/estiba-tools/bin/crane"
		if _, serr := os.Stat(path); serr != nil {
			testutil.RequiresCommand(t, "crane")
		}
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("crane %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return "", err
	}
	return out.String(), nil
}
