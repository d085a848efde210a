package service

import "testing"

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"user/app:1", "docker.io/user/app:1"},
		{"example.com/a/b", "example.com/a/b:latest"},
		{"localhost:5000/x:tag", "localhost:5000/x:tag"},
		{"localhost/x", "localhost/x:latest"},
		{"busybox@sha256:0123456789012345678901234567890123456789012345678901234567890123", "docker.io/library/busybox@sha256:0123456789012345678901234567890123456789012345678901234567890123"},
		{"x:1@sha256:0123456789012345678901234567890123456789012345678901234567890123", "docker.io/library/x@sha256:0123456789012345678901234567890123456789012345678901234567890123"},
		{"Upper", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, err := Normalize(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
