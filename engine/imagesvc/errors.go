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
		return worded(errdefs.ErrNotFound, err, "pull access denied for %s, repository does not exist or may require 'docker login': %s", r.FamiliarName(), codeText(code, msg))
	case code == "MANIFEST_UNKNOWN":
		return worded(errdefs.ErrNotFound, err, "manifest for %s not found: %s", r.Familiar(), codeText(code, msg))
	case code == "NAME_UNKNOWN":
		return worded(errdefs.ErrNotFound, err, "repository %s not found: %s", r.FamiliarName(), codeText(code, msg))
	case re != nil && code == "" && re.Status == http.StatusNotFound && strings.Contains(re.URL, "/manifests/"):
		// A HEAD's 404 carries no body: the registry's code would be this.
		return worded(errdefs.ErrNotFound, err, "manifest for %s not found: manifest unknown: manifest unknown", r.Familiar())
	case re != nil && code == "" && re.Status == http.StatusNotFound:
		return worded(errdefs.ErrNotFound, err, "%v", err)
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
		return worded(errdefs.ErrUnauthorized, err, "login to %s: unauthorized: %v", host, err)
	case errors.Is(err, registry.ErrDenied):
		// Known but refused (a token server's 403).
		return worded(errdefs.ErrForbidden, err, "%s %q: %s", methodName(re.Method), re.URL, codeText(or(code, "DENIED"), msg))
	case strings.HasSuffix(re.URL, "/v2/") && (code == "" || code == "UNAUTHORIZED"):
		// Basic authentication: the registry's /v2/ refused it.
		return worded(errdefs.ErrUnauthorized, err, "login attempt to %s failed with status: %d %s", re.URL, re.Status, http.StatusText(re.Status))
	case code != "":
		return worded(errdefs.ErrUnauthorized, err, "%s %q: %s", methodName(re.Method), re.URL, codeText(code, msg))
	}
	return worded(errdefs.ErrUnauthorized, err, "%s %q: unauthorized: %d %s", methodName(re.Method), re.URL, re.Status, http.StatusText(re.Status))
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

// wordedError says what Docker's daemon says and still wraps both the
// cause and the class (errors.Is sees them; the text does not repeat them).
type wordedError struct {
	msg  string
	errs []error
}

func (e *wordedError) Error() string   { return e.msg }
func (e *wordedError) Unwrap() []error { return e.errs }

func worded(class, cause error, format string, args ...any) error {
	return &wordedError{msg: fmt.Sprintf(format, args...), errs: []error{class, cause}}
}
