package imagesvc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/image/reference"
	"github.com/estiba/estiba/image/registry"
)

// registryCode is the first distribution-spec error code of a registry
// answer in err, with its message ("", "" if there is none).
func registryCode(err error) (*registry.Error, string, string) {
	var re *registry.Error
	if !errors.As(err, &re) {
		return nil, "", ""
	}
	for _, d := range re.Errors {
		return re, d.Code, d.Message
	}
	return re, "", ""
}

// codeText is how Docker prints a registry error code: "MANIFEST_UNKNOWN"
// with its message as "manifest unknown: <message>".
func codeText(code, msg string) string {
	s := strings.ToLower(strings.ReplaceAll(code, "_", " "))
	if msg == "" {
		return s
	}
	return s + ": " + msg
}

// pullError classifies a failed pull as Docker's daemon does: a repository
// or manifest the registry does not know, or access it denies, is "not
// found" (404) with Docker's wording, so the docker CLI prints the same
// text; anything else keeps its message and its class, if any.
func pullError(err error, ref string) error {
	if err == nil {
		return nil
	}
	r, perr := reference.Parse(ref)
	if perr != nil {
		return classify(err, ref)
	}
	re, code, msg := registryCode(err)
	switch {
	case code == "DENIED":
		return fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %s: %w",
			r.FamiliarName(), codeText(code, msg), errdefs.ErrNotFound)
	case code == "MANIFEST_UNKNOWN":
		return fmt.Errorf("manifest for %s not found: %s: %w", r.Familiar(), codeText(code, msg), errdefs.ErrNotFound)
	case code == "NAME_UNKNOWN":
		return fmt.Errorf("repository %s not found: %s: %w", r.FamiliarName(), codeText(code, msg), errdefs.ErrNotFound)
	case re != nil && code == "" && re.Status == http.StatusNotFound && strings.Contains(re.URL, "/manifests/"):
		// A HEAD's 404 carries no body: the registry's code would be this.
		return fmt.Errorf("manifest for %s not found: manifest unknown: manifest unknown: %w", r.Familiar(), errdefs.ErrNotFound)
	case re != nil && code == "" && re.Status == http.StatusNotFound:
		return fmt.Errorf("%v: %w", err, errdefs.ErrNotFound)
	}
	return classify(err, ref)
}

// loginError classifies a failed login: a refused credential is 401 (the
// docker CLI then prints the registry's reason and exits 1), with Docker's
// wording, a denied one 403; other failures (unreachable registry…) keep
// their message.
func loginError(err error, host string) error {
	if !errors.Is(err, registry.ErrUnauthorized) && !errors.Is(err, registry.ErrDenied) {
		return fmt.Errorf("login to %s: %w", host, err)
	}
	re, code, msg := registryCode(err)
	switch {
	case re == nil:
		return fmt.Errorf("login to %s: unauthorized: %v: %w", host, err, errdefs.ErrUnauthorized)
	case errors.Is(err, registry.ErrDenied):
		// Known but refused (a token server's 403).
		return fmt.Errorf("%s %q: %s: %w", methodName(re.Method), re.URL, codeText(or(code, "DENIED"), msg), errdefs.ErrForbidden)
	case strings.HasSuffix(re.URL, "/v2/") && (code == "" || code == "UNAUTHORIZED"):
		// Basic authentication: the registry's /v2/ refused it.
		return fmt.Errorf("login attempt to %s failed with status: %d %s: %w",
			re.URL, re.Status, http.StatusText(re.Status), errdefs.ErrUnauthorized)
	case code != "":
		return fmt.Errorf("%s %q: %s: %w", methodName(re.Method), re.URL, codeText(code, msg), errdefs.ErrUnauthorized)
	}
	return fmt.Errorf("%s %q: unauthorized: %d %s: %w", methodName(re.Method), re.URL, re.Status, http.StatusText(re.Status), errdefs.ErrUnauthorized)
}

// methodName is Go's url.Error spelling of a method ("Get"), as Docker's
// messages show it.
func methodName(m string) string {
	if m == "" {
		return "Get"
	}
	return m[:1] + strings.ToLower(m[1:])
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
