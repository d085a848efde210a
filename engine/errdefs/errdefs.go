// Package errdefs holds the error classes of the engine. Code wraps them with
// context (fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)); only the
// API edge turns a class into an HTTP status.
package errdefs

import "errors"

var (
	// ErrNotFound: the named object does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request clashes with existing state (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed or asks something impossible (400).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotImplemented: the feature is not built or not wired (501).
	ErrNotImplemented = errors.New("not implemented")
	// ErrNotModified: the object is already in the asked state (304).
	ErrNotModified = errors.New("not modified")
	// ErrUnauthorized: a registry refused the credential (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: a registry denied access with a valid credential (403).
	ErrForbidden = errors.New("forbidden")
)
