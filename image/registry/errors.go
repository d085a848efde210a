package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/estiba/estiba/image/registry/dockerconfig"
)

// Error classes. Every error the client returns for a registry response wraps
// one of these, so callers test with errors.Is.
var (
	ErrNotFound        = dockerconfig.ErrNotFound // shared with the docker config
	ErrUnauthorized    = errors.New("unauthorized")
	ErrDenied          = errors.New("denied")
	ErrTooManyRequests = errors.New("too many requests")
	ErrUnsupported     = errors.New("unsupported")
	ErrInvalid         = dockerconfig.ErrInvalid // shared with the docker config
	ErrUnavailable     = errors.New("registry unavailable")
	// ErrDigestMismatch means content did not match the digest or size that
	// named it; such content is never handed out.
	ErrDigestMismatch = errors.New("digest mismatch")
)

// ErrorDetail is one entry of a distribution-spec error body.
type ErrorDetail struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// Error is a registry's answer with an unexpected status.
type Error struct {
	Method string
	URL    string // without query: upload URLs carry opaque state
	Status int
	Errors []ErrorDetail
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	for _, d := range e.Errors {
		fmt.Fprintf(&b, "; %s", d.Code)
		if d.Message != "" {
			fmt.Fprintf(&b, ": %s", d.Message)
		}
	}
	return b.String()
}

// Unwrap gives the error's class: from the first known code in the body,
// else from the HTTP status.
func (e *Error) Unwrap() error {
	for _, d := range e.Errors {
		if c := classByCode[d.Code]; c != nil {
			return c
		}
	}
	switch {
	case e.Status == http.StatusNotFound:
		return ErrNotFound
	case e.Status == http.StatusUnauthorized:
		return ErrUnauthorized
	case e.Status == http.StatusForbidden:
		return ErrDenied
	case e.Status == http.StatusTooManyRequests:
		return ErrTooManyRequests
	case e.Status == http.StatusMethodNotAllowed || e.Status == http.StatusNotImplemented:
		return ErrUnsupported
	case e.Status >= 500:
		return ErrUnavailable
	case e.Status >= 400:
		return ErrInvalid
	}
	return nil
}

var classByCode = map[string]error{
	"BLOB_UNKNOWN":              ErrNotFound,
	"BLOB_UPLOAD_UNKNOWN":       ErrNotFound,
	"MANIFEST_UNKNOWN":          ErrNotFound,
	"NAME_UNKNOWN":              ErrNotFound,
	"UNAUTHORIZED":              ErrUnauthorized,
	"DENIED":                    ErrDenied,
	"TOOMANYREQUESTS":           ErrTooManyRequests,
	"UNSUPPORTED":               ErrUnsupported,
	"BLOB_UPLOAD_INVALID":       ErrInvalid,
	"DIGEST_INVALID":            ErrInvalid,
	"MANIFEST_BLOB_UNKNOWN":     ErrInvalid,
	"MANIFEST_INVALID":          ErrInvalid,
	"MANIFEST_UNVERIFIED":       ErrInvalid,
	"NAME_INVALID":              ErrInvalid,
	"SIZE_INVALID":              ErrInvalid,
	"TAG_INVALID":               ErrInvalid,
	"PAGINATION_NUMBER_INVALID": ErrInvalid,
	"RANGE_INVALID":             ErrInvalid,
	"UNAVAILABLE":               ErrUnavailable,
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// responseError builds an *Error from resp and closes its body.
func responseError(resp *http.Response) error {
	defer resp.Body.Close()
	e := &Error{Method: resp.Request.Method, URL: redactURL(resp.Request.URL.String()), Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var parsed struct {
		Errors []ErrorDetail `json:"errors"`
	}
	if json.Unmarshal(body, &parsed) == nil {
		e.Errors = parsed.Errors
	}
	return e
}

func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}
