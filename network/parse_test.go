package network

import (
	"net/netip"
	"testing"
)

func TestParsePorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		spec string
		want []PortMapping
		bad  bool
	}{
		{"8080:80", []PortMapping{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, false},
		{"127.0.0.1:53:53/udp", []PortMapping{{HostIP: lo, HostPort: 53, ContainerPort: 53, Proto: "udp"}}, false},
		{"9000-9001:7000-7001", []PortMapping{{HostPort: 9000, ContainerPort: 7000, Proto: "tcp"}, {HostPort: 9001, ContainerPort: 7001, Proto: "tcp"}}, false},
		{"9000-9001:80", []PortMapping{{HostPort: 9000, ContainerPort: 80, Proto: "tcp"}, {HostPort: 9001, ContainerPort: 80, Proto: "tcp"}}, false},
		{"80", nil, true},
		{"0:80", nil, true},
		{"70000:80", nil, true},
		{"80:80/sctp", nil, true},
		{"9000-9002:7000-7001", nil, true},
		{"x:80:80", nil, true},
		{"[::1]:80:80", []PortMapping{{HostIP: netip.IPv6Loopback(), HostPort: 80, ContainerPort: 80, Proto: "tcp"}}, false},
		{"[::]:80:80/udp", []PortMapping{{HostIP: netip.IPv6Unspecified(), HostPort: 80, ContainerPort: 80, Proto: "udp"}}, false},
		{"::1:80:80", nil, true},
		{"[127.0.0.1]:80:80", nil, true},
		{"[::1:80:80", nil, true},
		{"[::ffff:127.0.0.1]:80:80", nil, true},
		{"[fe80::1%eth0]:80:80", nil, true},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.spec)
		if (err != nil) != tt.bad {
			t.Errorf("%s: err %v", tt.spec, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %v want %v", tt.spec, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: got %v want %v", tt.spec, got[i], tt.want[i])
			}
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		bad  bool
	}{
		{"10mbit", 10e6, false}, {"1gbit", 1e9, false}, {"500k", 500e3, false},
		{"1.5M", 1.5e6, false}, {"1000", 1000, false}, {"1mbps", 8e6, false},
		{"", 0, true}, {"-1k", 0, true}, {"fast", 0, true}, {"0", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestPool(t *testing.T) {
	p := newPool(netip.MustParsePrefix("10.0.0.0/29"), netip.MustParseAddr("10.0.0.1"))
	for _, tt := range []struct {
		ip  string
		bad bool
	}{{"10.0.0.0", true}, {"10.0.0.1", true}, {"10.0.0.7", true}, {"10.0.0.8", true}, {"10.0.0.3", false}} {
		if err := p.check(netip.MustParseAddr(tt.ip)); (err != nil) != tt.bad {
			t.Errorf("check %s: %v", tt.ip, err)
		}
	}
	p.take(netip.MustParseAddr("10.0.0.3"))
	if p.check(netip.MustParseAddr("10.0.0.3")) == nil {
		t.Error("taken address accepted")
	}
	var got []string
	for {
		a, err := p.allocate()
		if err != nil {
			break
		}
		got = append(got, a.String())
	}
	want := []string{"10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	p.release(netip.MustParseAddr("10.0.0.5"))
	if a, err := p.allocate(); err != nil || a.String() != "10.0.0.5" {
		t.Fatalf("after release: %v %v", a, err)
	}
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"80:80", "127.0.0.1:1-5:1-5/udp", "::", "1-65535:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParsePorts(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if validPort(p) != nil {
				t.Fatalf("%q gave invalid %v", s, p)
			}
		}
	})
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10mbit", "1.5g", "8bps", "1e3k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseRate(s); err == nil && (r == 0 || r > 1e13) {
			t.Fatalf("%q gave %d", s, r)
		}
	})
}
