package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// deviceRule is a checked linux.resources.devices entry.
type deviceRule struct {
	allow bool
	typ   byte  // 'a', 'b' or 'c'
	major int64 // -1 = any
	minor int64 // -1 = any
	// access is a subset of "rwm", in that order; never empty.
	access string
}

func parseDeviceRule(d specs.LinuxDeviceCgroup) (deviceRule, error) {
	r := deviceRule{allow: d.Allow, typ: 'a', major: -1, minor: -1, access: "rwm"}
	switch d.Type {
	case "", "a":
	case "b", "c":
		r.typ = d.Type[0]
	default:
		return r, fmt.Errorf("device rule type %q: want a, b or c", d.Type)
	}
	for _, p := range []struct {
		v   *int64
		dst *int64
	}{{d.Major, &r.major}, {d.Minor, &r.minor}} {
		if p.v != nil {
			if *p.v < -1 {
				return r, fmt.Errorf("device rule number %d: want -1 (any) or non-negative", *p.v)
			}
			*p.dst = *p.v
		}
	}
	if d.Access != "" {
		var acc string
		for _, c := range "rwm" {
			if strings.ContainsRune(d.Access, c) {
				acc += string(c)
			}
		}
		if len(acc) != len(d.Access) || strings.Trim(d.Access, "rwm") != "" {
			return r, fmt.Errorf("device rule access %q: want letters from rwm, each at most once", d.Access)
		}
		r.access = acc
	}
	return r, nil
}

// wildcard is a rule matching every device and access: it decides the
// default for everything not matched by a later rule.
func (r deviceRule) wildcard() bool {
	return r.typ == 'a' && r.major == -1 && r.minor == -1 && r.access == "rwm"
}

// v1String is the devices.allow/deny format: "TYPE MAJOR:MINOR ACCESS".
func (r deviceRule) v1String() string {
	if r.wildcard() {
		return "a"
	}
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, num(r.major), num(r.minor), r.access)
}

func parseDeviceRules(devs []specs.LinuxDeviceCgroup) ([]deviceRule, error) {
	rules := make([]deviceRule, 0, len(devs))
	for _, d := range devs {
		r, err := parseDeviceRule(d)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// effectiveRules reduces a rule list, where the last matching rule wins and
// nothing matched is denied, to a default plus the rules after the last
// wildcard (the rules before it can never be the last match).
func effectiveRules(rules []deviceRule) (defaultAllow bool, rest []deviceRule) {
	rest = rules
	for i := len(rules) - 1; i >= 0; i-- {
		if rules[i].wildcard() {
			return rules[i].allow, rules[i+1:]
		}
	}
	return false, rest
}

// setDevices applies the device rules. An empty list leaves the cgroup's
// device access as it is; a non-empty one replaces it entirely.
func (m *manager) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	rules, err := parseDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	if dir, ok := m.v1["devices"]; ok {
		return setDevicesV1(dir, rules)
	}
	if m.v2 == "" {
		return fmt.Errorf("device rules: no devices controller and no cgroup2 hierarchy on this host")
	}
	return setDevicesBPF(m.v2, rules)
}

// v1Exceptions turns last-match-wins rules into what a v1 device cgroup
// holds: a default and a list of exceptions to it. A rule agreeing with the
// default removes the access it covers from earlier exceptions, as the
// kernel does; a rule narrower than the exception it would cut (deny one
// minor of an allowed major) cannot be expressed on v1 and is refused.
func v1Exceptions(rules []deviceRule) (bool, []deviceRule, error) {
	defAllow, rest := effectiveRules(rules)
	var exc []deviceRule
	for _, r := range rest {
		if r.allow != defAllow {
			exc = append(exc, r)
			continue
		}
		kept := exc[:0]
		for _, e := range exc {
			if !r.overlaps(e) {
				kept = append(kept, e)
				continue
			}
			if !r.covers(e) {
				return false, nil, fmt.Errorf("device rule %q after %q cannot be expressed on cgroup v1 (it cuts a hole in a wider rule)", r.v1String(), e.v1String())
			}
			e.access = strings.Map(func(c rune) rune {
				if strings.ContainsRune(r.access, c) {
					return -1
				}
				return c
			}, e.access)
			if e.access != "" {
				kept = append(kept, e)
			}
		}
		exc = kept
	}
	return defAllow, exc, nil
}

// overlaps reports whether some access matches both r and e.
func (r deviceRule) overlaps(e deviceRule) bool {
	return (r.typ == 'a' || e.typ == 'a' || r.typ == e.typ) &&
		(r.major < 0 || e.major < 0 || r.major == e.major) &&
		(r.minor < 0 || e.minor < 0 || r.minor == e.minor) &&
		strings.ContainsAny(r.access, e.access)
}

// covers reports whether r matches every device e does.
func (r deviceRule) covers(e deviceRule) bool {
	return (r.typ == 'a' || r.typ == e.typ) && (r.major < 0 || r.major == e.major) && (r.minor < 0 || r.minor == e.minor)
}

// setDevicesV1 writes the default first ("a" to devices.deny or
// devices.allow resets the exception list), then the exceptions. The kernel
// refuses to change a v1 device cgroup's default while it has children,
// which the container's cgroup normally does not.
func setDevicesV1(dir string, rules []deviceRule) error {
	defAllow, exc, err := v1Exceptions(rules)
	if err != nil {
		return err
	}
	def, other := "devices.deny", "devices.allow"
	if defAllow {
		def, other = other, def
	}
	if err := writeFile(dir, def, "a"); err != nil {
		return err
	}
	for _, r := range exc {
		if err := writeFile(dir, other, r.v1String()); err != nil {
			return err
		}
	}
	return nil
}
