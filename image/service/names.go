package service

import (
	"github.com/estiba/estiba/image/reference"
)

// Normalize returns the canonical form of an image reference:
// "busybox" -> "docker.io/library/busybox:latest".
func Normalize(ref string) (string, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return "", err
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
