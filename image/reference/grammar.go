package reference

import "strings"

// The grammar below is Docker's (distribution/reference), written as small
// scanners rather than regular expressions so that parsing is linear and the
// error paths are easy to follow.

func isAlnumLower(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
func isAlnum(c byte) bool      { return isAlnumLower(c) || c >= 'A' && c <= 'Z' }
func isWord(c byte) bool       { return isAlnum(c) || c == '_' }
func isHex(c byte) bool        { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// isHexID matches ^[a-f0-9]{64}$: an image ID, which Docker refuses as a name.
func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// validTag matches [\w][\w.-]{0,127}.
func validTag(t string) bool {
	if t == "" || len(t) > TagMaxLength || !isWord(t[0]) {
		return false
	}
	for i := 1; i < len(t); i++ {
		if !isWord(t[i]) && t[i] != '.' && t[i] != '-' {
			return false
		}
	}
	return true
}

// validDomain matches host[:port], host being dot-separated components of
// [a-zA-Z0-9] and inner '-', or a bracketed IPv6 address.
func validDomain(d string) bool {
	host, port := d, ""
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 || !validIPv6(d[1:end]) {
			return false
		}
		host, port = "", d[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
	} else if i := strings.IndexByte(d, ':'); i >= 0 {
		host, port = d[:i], d[i:]
	}
	if port != "" && !validPort(port[1:]) {
		return false
	}
	if host == "" {
		return strings.HasPrefix(d, "[")
	}
	for _, c := range strings.Split(host, ".") {
		if !validDomainComponent(c) {
			return false
		}
	}
	return true
}

func validIPv6(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) && s[i] != ':' {
			return false
		}
	}
	return true
}

func validPort(p string) bool {
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func validDomainComponent(c string) bool {
	if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isAlnum(c[i]) && c[i] != '-' {
			return false
		}
	}
	return true
}

// validPath matches component(/component)*.
func validPath(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if !validPathComponent(c) {
			return false
		}
	}
	return true
}

// validPathComponent matches [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*.
func validPathComponent(c string) bool {
	i := 0
	for {
		start := i
		for i < len(c) && isAlnumLower(c[i]) {
			i++
		}
		if i == start {
			return false // empty alphanumeric run
		}
		if i == len(c) {
			return true
		}
		switch {
		case strings.HasPrefix(c[i:], "__"):
			i += 2
		case c[i] == '.' || c[i] == '_':
			i++
		case c[i] == '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}
