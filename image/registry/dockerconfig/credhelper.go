package dockerconfig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// A credential helper is the docker-credential-helpers protocol: the program
// docker-credential-<name> on PATH, one action per run as its argument,
// input on stdin and output on stdout:
//
//	get     stdin: server URL       stdout: {"ServerURL","Username","Secret"}
//	store   stdin: that JSON        stdout: nothing
//	erase   stdin: server URL       stdout: nothing
//
// (list, which enumerates everything stored, is not used: estiba only
// ever asks for one registry.)
// A failure exits non-zero with the reason on stdout; "credentials not
// found in native keychain" means there is none. A Username of "<token>"
// marks Secret as an identity token.
type credHelper struct {
	name string
}

const (
	helperPrefix      = "docker-credential-"
	helperNotFound    = "credentials not found in native keychain"
	helperTokenUser   = "<token>"
	helperTimeout     = 30 * time.Second
	helperMaxResponse = 1 << 20
)

// helperCreds is the JSON the helpers exchange.
type helperCreds struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// errHelperNotFound is a helper's answer that it holds nothing for a server.
// A value of its own type, not fmt.Errorf's: the CLI links this package,
// and an error formatted at init would cost every CLI start fmt's first
// use.
var errHelperNotFound error = helperNotFoundError{}

type helperNotFoundError struct{}

func (helperNotFoundError) Error() string {
	return "credential helper: " + helperNotFound + ": " + ErrNotFound.Error()
}

func (helperNotFoundError) Unwrap() error { return ErrNotFound }

func (h credHelper) program() string { return helperPrefix + h.name }

// run runs one action. A helper holds secrets and may talk to a keychain
// daemon; it gets a bounded time and its output is bounded too.
func (h credHelper) run(action string, in []byte) ([]byte, error) {
	prog, err := exec.LookPath(h.program())
	if err != nil {
		return nil, fmt.Errorf("credential helper %s: %w", h.program(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, action)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr limitedBuffer
	out.max, stderr.max = helperMaxResponse, 4096
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if strings.Contains(msg, helperNotFound) {
			return nil, errHelperNotFound
		}
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if msg != "" {
			return nil, fmt.Errorf("credential helper %s %s: %s: %w", h.program(), action, msg, err)
		}
		return nil, fmt.Errorf("credential helper %s %s: %w", h.program(), action, err)
	}
	if out.overflow {
		return nil, fmt.Errorf("credential helper %s %s: answer over %d bytes: %w", h.program(), action, helperMaxResponse, ErrInvalid)
	}
	return out.Bytes(), nil
}

// get returns the credential for serverURL; none is the zero Credential.
func (h credHelper) get(serverURL string) (Credential, error) {
	out, err := h.run("get", []byte(serverURL))
	if errors.Is(err, errHelperNotFound) {
		return Credential{}, nil
	}
	if err != nil {
		return Credential{}, err
	}
	var hc helperCreds
	if err := json.Unmarshal(out, &hc); err != nil {
		return Credential{}, fmt.Errorf("credential helper %s get: bad answer: %w", h.program(), err)
	}
	if hc.Username == helperTokenUser {
		return Credential{IdentityToken: hc.Secret}, nil
	}
	return Credential{Username: hc.Username, Password: hc.Secret}, nil
}

func (h credHelper) store(serverURL string, cred Credential) error {
	hc := helperCreds{ServerURL: serverURL, Username: cred.Username, Secret: cred.Password}
	if cred.IdentityToken != "" {
		hc.Username, hc.Secret = helperTokenUser, cred.IdentityToken
	}
	// Unescaped: helpers written as scripts look for "<token>" literally.
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(hc); err != nil {
		return err
	}
	_, err := h.run("store", bytes.TrimSpace(in.Bytes()))
	return err
}

// erase forgets serverURL; ErrNotFound if the helper held nothing.
func (h credHelper) erase(serverURL string) error {
	_, err := h.run("erase", []byte(serverURL))
	return err
}

// limitedBuffer keeps the first max bytes written and notes the rest.
type limitedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.overflow = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
