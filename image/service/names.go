package service

import (
	"strings"

	"github.com/estiba/estiba/image/reference"
	"github.com/opencontainers/go-digest"
)

// Normalize returns the canonical form of an image reference:
// "busybox" -> "docker.io/library/busybox:latest". A reference with both a
// tag and a digest names the digest only ("x:1@sha256:…" -> "…/x@sha256:…"),
// as Docker resolves it.
func Normalize(ref string) (string, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return "", err
	}
	if r.Digest != "" {
		r.Tag = ""
	}
	return r.String(), nil
}

// Familiar shortens a normalized name the way Docker prints it.
func Familiar(name string) string {
	r, err := reference.Parse(name)
	if err != nil {
		return name
	}
	return r.Familiar()
}

// isDigestRef reports whether a normalized name is a repository digest
// (name@sha256:…) rather than a tag.
func isDigestRef(name string) bool { return strings.Contains(name, "@") }

// repoOf is the repository of a normalized name ("docker.io/library/x").
func repoOf(name string) string {
	r, err := reference.ParseName(name)
	if err != nil {
		return name
	}
	return r.Name()
}

// digestRef is repo@d, normalized.
func digestRef(name string, d digest.Digest) string { return repoOf(name) + "@" + d.String() }

// splitNames separates tags from repository digests.
func splitNames(names []string) (tags, digests []string) {
	for _, n := range names {
		if isDigestRef(n) {
			digests = append(digests, n)
		} else {
			tags = append(tags, n)
		}
	}
	return tags, digests
}
