package service

import (
	"fmt"
	"regexp"
	"strings"
)

// Until image/reference lands, a local Docker-style normalizer:
// "busybox" -> "docker.io/library/busybox:latest".
var refPattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// Normalize returns the canonical form of an image reference.
func Normalize(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("empty image reference")
	}
	name, dgst, hasDigest := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	domain, rest, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(domain, ".:") && domain != "localhost") {
		domain, rest = "docker.io", name
	}
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	if !refPattern.MatchString(rest) {
		return "", fmt.Errorf("invalid image reference %q", ref)
	}
	out := domain + "/" + rest
	if tag != "" {
		out += ":" + tag
	}
	if hasDigest {
		return out + "@" + dgst, nil
	}
	if tag == "" {
		out += ":latest"
	}
	return out, nil
}

// Familiar shortens a normalized name the way Docker prints it.
func Familiar(name string) string {
	name = strings.TrimPrefix(name, "docker.io/")
	return strings.TrimPrefix(name, "library/")
}
