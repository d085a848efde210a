// Package reference parses and prints image references the way Docker does.
//
// A reference names a repository on a registry and optionally a tag and a
// digest: [domain/]path[:tag][@digest]. Parsing normalises like the docker
// CLI: a name without a domain lives on docker.io, a single-component
// docker.io path lives under library/, and index.docker.io is docker.io.
//
//	Parse("alpine")                 → docker.io/library/alpine:latest
//	Parse("localhost:5000/x")       → localhost:5000/x:latest
//	Parse("x@sha256:…")             → docker.io/library/x@sha256:… (no tag added)
//	ParseName("alpine")             → docker.io/library/alpine (no tag added)
//
// String prints the canonical, fully qualified form; Familiar prints the short
// form users type ("alpine:latest"), for output.
package reference

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Limits and defaults Docker applies.
const (
	// NameMaxLength bounds domain/path together (Docker's NameTotalLengthMax).
	NameMaxLength = 255
	// TagMaxLength bounds a tag.
	TagMaxLength = 128
	// DefaultDomain is where names without a domain live.
	DefaultDomain = "docker.io"
	// DefaultTag is added by Parse when neither tag nor digest is given.
	DefaultTag = "latest"

	legacyDomain   = "index.docker.io"
	officialPrefix = "library/"
)

// Errors returned by Parse, wrapped with the offending input. All of them
// wrap ErrInvalidFormat, so callers classifying "bad reference" test for it.
var (
	ErrInvalidFormat = errors.New("invalid reference format")
	ErrNameEmpty     = fmt.Errorf("%w: repository name must have at least one component", ErrInvalidFormat)
	ErrUppercase     = fmt.Errorf("%w: repository name must be lowercase", ErrInvalidFormat)
	ErrNameTooLong   = fmt.Errorf("%w: repository name must not be more than %d characters", ErrInvalidFormat, NameMaxLength)
	ErrTagInvalid    = fmt.Errorf("%w: invalid tag", ErrInvalidFormat)
	ErrDigestInvalid = fmt.Errorf("%w: invalid digest", ErrInvalidFormat)
	ErrHexID         = fmt.Errorf("%w: cannot specify 64-byte hexadecimal strings", ErrInvalidFormat)
)

// Reference is a parsed, normalised image reference. The zero value is not a
// valid reference; build one with Parse or ParseName.
type Reference struct {
	// Domain is the registry host, with an optional :port ("docker.io",
	// "localhost:5000", "[::1]:5000").
	Domain string
	// Path is the repository within the domain ("library/alpine").
	Path string
	// Tag is empty when the reference has none.
	Tag string
	// Digest is empty when the reference has none.
	Digest digest.Digest
}

// Parse parses s like `docker pull` does: normalised, with the tag "latest"
// added when s has neither tag nor digest.
func Parse(s string) (Reference, error) {
	r, err := ParseName(s)
	if err != nil {
		return Reference{}, err
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	return r, nil
}

// ParseName parses s, normalised, without adding a default tag.
func ParseName(s string) (Reference, error) {
	r, err := parse(s)
	if err != nil {
		return Reference{}, fmt.Errorf("reference %q: %w", s, err)
	}
	return r, nil
}

func parse(s string) (Reference, error) {
	if s == "" {
		return Reference{}, ErrNameEmpty
	}
	if isHexID(s) {
		return Reference{}, ErrHexID
	}
	var r Reference
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		d, err := digest.Parse(name[i+1:])
		if err != nil {
			return Reference{}, fmt.Errorf("%w: %v", ErrDigestInvalid, err)
		}
		r.Digest, name = d, name[:i]
	}
	// A tag follows the last ':' only if no '/' comes after it; otherwise the
	// ':' separates a domain from its port.
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i+1:], "/") {
		if !validTag(name[i+1:]) {
			return Reference{}, ErrTagInvalid
		}
		r.Tag, name = name[i+1:], name[:i]
	}
	if name == "" {
		return Reference{}, ErrNameEmpty
	}
	if len(name) > NameMaxLength {
		return Reference{}, ErrNameTooLong
	}
	domain, path := splitDomain(name)
	if domain != "" && !validDomain(domain) {
		return Reference{}, ErrInvalidFormat
	}
	if strings.ToLower(path) != path {
		return Reference{}, ErrUppercase
	}
	if !validPath(path) {
		return Reference{}, ErrInvalidFormat
	}
	r.Domain, r.Path = normalise(domain, path)
	if len(r.Domain)+1+len(r.Path) > NameMaxLength {
		return Reference{}, ErrNameTooLong
	}
	return r, nil
}

// splitDomain applies Docker's heuristic: the first component is a domain if
// it contains '.' or ':', is "localhost", or has uppercase letters (a path
// never may). Otherwise the name is on the default domain.
func splitDomain(name string) (domain, path string) {
	i := strings.IndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	first := name[:i]
	if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
		return first, name[i+1:]
	}
	return "", name
}

func normalise(domain, path string) (string, string) {
	if domain == "" || domain == legacyDomain {
		domain = DefaultDomain
	}
	if domain == DefaultDomain && !strings.Contains(path, "/") {
		path = officialPrefix + path
	}
	return domain, path
}

// Name is the fully qualified repository name: "docker.io/library/alpine".
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the canonical form: name[:tag][@digest]. It parses back to r.
func (r Reference) String() string { return r.Name() + r.suffix() }

// FamiliarName is the repository name as users type it: "alpine",
// "user/app", "localhost:5000/x".
func (r Reference) FamiliarName() string {
	if r.Domain != DefaultDomain {
		return r.Name()
	}
	if rest, ok := strings.CutPrefix(r.Path, officialPrefix); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return r.Path
}

// Familiar is the short form for output: "alpine:latest".
func (r Reference) Familiar() string { return r.FamiliarName() + r.suffix() }

func (r Reference) suffix() string {
	s := ""
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// WithTag returns r with its tag set to tag (and no digest).
func (r Reference) WithTag(tag string) (Reference, error) {
	if !validTag(tag) {
		return Reference{}, fmt.Errorf("tag %q: %w", tag, ErrTagInvalid)
	}
	r.Tag, r.Digest = tag, ""
	return r, nil
}

// WithDigest returns r pinned to d, keeping the tag for display.
func (r Reference) WithDigest(d digest.Digest) (Reference, error) {
	if err := d.Validate(); err != nil {
		return Reference{}, fmt.Errorf("digest %q: %w: %v", d, ErrDigestInvalid, err)
	}
	r.Digest = d
	return r, nil
}

// NameOnly returns r without tag and digest.
func (r Reference) NameOnly() Reference { return Reference{Domain: r.Domain, Path: r.Path} }

// IsZero reports whether r is the zero value.
func (r Reference) IsZero() bool { return r == Reference{} }
