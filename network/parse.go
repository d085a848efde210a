package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParsePorts parses a publish spec as `docker run -p` takes it:
// [hostIP:][hostPort[-end]:]containerPort[-end][/tcp|udp]. A range on both
// sides must have the same length; a host range with one container port
// maps every host port to it. The host port is required: choosing a free
// one is the engine's job, it knows every endpoint's ports.
func ParsePorts(spec string) ([]PortMapping, error) {
	bad := func(why string) ([]PortMapping, error) {
		return nil, fmt.Errorf("port spec %q: %s: %w", spec, why, ErrInvalid)
	}
	proto := "tcp"
	s := spec
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		proto = s[i+1:]
		s = s[:i]
		if proto != "tcp" && proto != "udp" {
			return bad("protocol must be tcp or udp")
		}
	}
	var hostIP netip.Addr
	if strings.HasPrefix(s, "[") { // [v6]:hostPort:containerPort
		end := strings.Index(s, "]:")
		if end < 0 {
			return bad("unterminated [IPv6 address]")
		}
		ip, err := netip.ParseAddr(s[1:end])
		if err != nil || !ip.Is6() {
			return bad("host IPv6 address")
		}
		hostIP, s = ip, "x"+s[end+1:]
	}
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 2:
	case 3:
		if !hostIP.IsValid() {
			ip, err := netip.ParseAddr(parts[0])
			if err != nil || !ip.Is4() {
				return bad("host IP (IPv6 goes in brackets)")
			}
			hostIP = ip
		}
		parts = parts[1:]
	default:
		return bad("want [hostIP:]hostPort:containerPort[/proto]")
	}
	h0, h1, err := portRange(parts[0])
	if err != nil {
		return bad(err.Error())
	}
	c0, c1, err := portRange(parts[1])
	if err != nil {
		return bad(err.Error())
	}
	if c1-c0 != 0 && c1-c0 != h1-h0 {
		return bad("host and container ranges differ in length")
	}
	var out []PortMapping
	for p := int(h0); p <= int(h1); p++ {
		c := c0
		if c1 != c0 {
			c = c0 + uint16(p-int(h0))
		}
		pm := PortMapping{HostIP: hostIP, HostPort: uint16(p), ContainerPort: c, Proto: proto}
		if err := validPort(pm); err != nil {
			return nil, err
		}
		out = append(out, pm)
	}
	return out, nil
}

func portRange(s string) (uint16, uint16, error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(a, 10, 16)
	if err != nil || lo == 0 {
		return 0, 0, fmt.Errorf("port %q", a)
	}
	hi := lo
	if isRange {
		if hi, err = strconv.ParseUint(b, 10, 16); err != nil || hi < lo {
			return 0, 0, fmt.Errorf("port range %q", s)
		}
	}
	return uint16(lo), uint16(hi), nil
}

// ParseRate parses a rate in bits per second. Suffixes (decimal, case
// insensitive): bit, k/kbit, m/mbit, g/gbit, t/tbit are bits; bps, kbps,
// mbps, gbps are BYTES per second, as in tc(8). A bare number is bits/s.
func ParseRate(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{
		{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
		{"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8},
		{"t", 1e12}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"", 1},
	}
	l := strings.ToLower(strings.TrimSpace(s))
	for _, u := range units {
		num, ok := strings.CutSuffix(l, u.suffix)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		bits := f * float64(u.mult)
		// !(bits >= 1) also refuses NaN.
		if err != nil || !(bits >= 1) || bits > 1e13 {
			return 0, fmt.Errorf("rate %q: %w", s, ErrInvalid)
		}
		return uint64(bits), nil
	}
	return 0, fmt.Errorf("rate %q: %w", s, ErrInvalid)
}

// ParseSize parses a burst size in bytes: b, k/kb, m/mb (binary: 1k = 1024).
func ParseSize(s string) (uint64, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"k", 1 << 10}, {"m", 1 << 20}, {"b", 1}} {
		if n, ok := strings.CutSuffix(l, u.suffix); ok {
			l, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseUint(l, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("size %q: %w", s, ErrInvalid)
	}
	return n * mult, nil
}
