package reference

import (
	"errors"
	"strings"
	"testing"
)

const (
	sha  = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	hex1 = "1234567890098765432112345678900987654321123456789009876543211234"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		want     string // canonical String()
		familiar string
		domain   string
		path     string
	}{
		{"alpine", "docker.io/library/alpine:latest", "alpine:latest", "docker.io", "library/alpine"},
		{"alpine:3.20", "docker.io/library/alpine:3.20", "alpine:3.20", "docker.io", "library/alpine"},
		{"library/alpine", "docker.io/library/alpine:latest", "alpine:latest", "docker.io", "library/alpine"},
		{"docker.io/alpine", "docker.io/library/alpine:latest", "alpine:latest", "docker.io", "library/alpine"},
		{"index.docker.io/alpine", "docker.io/library/alpine:latest", "alpine:latest", "docker.io", "library/alpine"},
		{"user/app", "docker.io/user/app:latest", "user/app:latest", "docker.io", "user/app"},
		{"docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest", "docker.io", "library/a/b"},
		{"localhost/x", "localhost/x:latest", "localhost/x:latest", "localhost", "x"},
		{"localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest", "localhost:5000", "x"},
		{"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io", "library/localhost"},
		{"host.tld/ns/x:tag", "host.tld/ns/x:tag", "host.tld/ns/x:tag", "host.tld", "ns/x"},
		{"127.0.0.1:5000/a/b:v1.0-rc_2", "127.0.0.1:5000/a/b:v1.0-rc_2", "127.0.0.1:5000/a/b:v1.0-rc_2", "127.0.0.1:5000", "a/b"},
		{"[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest", "[::1]:5000", "x"},
		{"[fe80::1]/x:t", "[fe80::1]/x:t", "[fe80::1]/x:t", "[fe80::1]", "x"},
		{"Foo.com/x", "Foo.com/x:latest", "Foo.com/x:latest", "Foo.com", "x"},
		{"FOO/x", "FOO/x:latest", "FOO/x:latest", "FOO", "x"},
		{"x@" + sha, "docker.io/library/x@" + sha, "x@" + sha, "docker.io", "library/x"},
		{"x:tag@" + sha, "docker.io/library/x:tag@" + sha, "x:tag@" + sha, "docker.io", "library/x"},
		{"sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux"},
		{"b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app"},
		{"xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage"},
		{"foo_bar.com:8080", "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080", "docker.io", "library/foo_bar.com"},
		{"foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com"},
		{"192.168.1.1", "docker.io/library/192.168.1.1:latest", "192.168.1.1:latest", "docker.io", "library/192.168.1.1"},
		{"192.168.1.1:5000/x", "192.168.1.1:5000/x:latest", "192.168.1.1:5000/x:latest", "192.168.1.1:5000", "x"},
		{"localhost:5000/repo@" + sha, "localhost:5000/repo@" + sha, "localhost:5000/repo@" + sha, "localhost:5000", "repo"},
		{"a.b/c-d__e.f_g--h", "a.b/c-d__e.f_g--h:latest", "a.b/c-d__e.f_g--h:latest", "a.b", "c-d__e.f_g--h"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := r.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := r.Familiar(); got != tt.familiar {
				t.Errorf("Familiar() = %q, want %q", got, tt.familiar)
			}
			if r.Domain != tt.domain || r.Path != tt.path {
				t.Errorf("domain, path = %q, %q; want %q, %q", r.Domain, r.Path, tt.domain, tt.path)
			}
		})
	}
}

func TestParseNameKeepsNoTag(t *testing.T) {
	r, err := ParseName("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != "docker.io/library/busybox" || r.Tag != "" {
		t.Errorf("ParseName(busybox) = %q (tag %q)", r, r.Tag)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrNameEmpty},
		{":tag", ErrNameEmpty},
		{"@" + sha, ErrNameEmpty},
		{hex1, ErrHexID},
		{"Uppercase", ErrUppercase},
		{"docker.io/Library/x", ErrUppercase},
		{"x:", ErrTagInvalid},
		{"x:-tag", ErrTagInvalid},
		{"x:" + strings.Repeat("a", 129), ErrTagInvalid},
		{"x@sha256:abc", ErrDigestInvalid},
		{"x@sha256:" + strings.ToUpper(sha[7:]), ErrDigestInvalid},
		{"x@", ErrDigestInvalid},
		{"a/" + strings.Repeat("a", 254), ErrNameTooLong},
		{strings.Repeat("a", 256), ErrNameTooLong},
		{"-x", ErrInvalidFormat},
		{"x-", ErrInvalidFormat},
		{"a//b", ErrInvalidFormat},
		{"a/", ErrInvalidFormat},
		{"a..b", ErrInvalidFormat},
		{"a___b", ErrInvalidFormat},
		{"-host.com/x", ErrInvalidFormat},
		{"host.com:/x", ErrInvalidFormat},
		{"host.com:port/x", ErrInvalidFormat},
		{"[zz]:5000/x", ErrInvalidFormat},
		{"foo_bar.com:8080/x", ErrInvalidFormat},
		{"a b", ErrInvalidFormat},
		{"a b/c", ErrInvalidFormat},
		{"x:tag:tag2", ErrInvalidFormat},
		{"aa/asdf$$^/aa", ErrInvalidFormat},
		{"[2001:db8::1]", ErrInvalidFormat},
		{"[2001:db8::1]:5000", ErrInvalidFormat},
		{"[fe80::1%eth0]:5000/repo", ErrInvalidFormat},
		{"registry.com:8080/myapp@sha256:badbadbadbad", ErrDigestInvalid},
		{"a.b/c/" + strings.Repeat("d", 250), ErrNameTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want %v", tt.in, r, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Parse(%q) error %v, want %v", tt.in, err, tt.want)
			}
			if !strings.Contains(err.Error(), "reference") {
				t.Errorf("error %q does not name the input", err)
			}
		})
	}
}

func TestWith(t *testing.T) {
	r, _ := Parse("alpine:3@" + sha)
	if got, _ := r.WithTag("edge"); got.String() != "docker.io/library/alpine:edge" {
		t.Errorf("WithTag = %s", got)
	}
	if _, err := r.WithTag("bad tag"); !errors.Is(err, ErrTagInvalid) {
		t.Errorf("WithTag(bad) = %v", err)
	}
	if _, err := r.WithDigest("sha256:x"); !errors.Is(err, ErrDigestInvalid) {
		t.Errorf("WithDigest(bad) = %v", err)
	}
	if got := r.NameOnly().String(); got != "docker.io/library/alpine" {
		t.Errorf("NameOnly = %s", got)
	}
}

// FuzzParse checks that Parse never panics and that its canonical output is a
// fixed point: String(Parse(s)) parses to the same reference.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"alpine", "localhost:5000/x", "host.tld/ns/x:tag", "x@" + sha,
		"x:tag@" + sha, "[::1]:5000/a/b", "Foo/x", hex1, "a__b-c.d", ":", "@", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %q which does not parse: %v", s, r, err)
		}
		if again != r {
			t.Fatalf("round trip of %q: %#v != %#v", s, again, r)
		}
		fam, err := Parse(r.Familiar())
		if err != nil || fam != r {
			t.Fatalf("familiar round trip of %q: %q → %#v, %v", s, r.Familiar(), fam, err)
		}
	})
}
