// Package caps applies the five capability sets of an OCI process.
//
// Capability sets belong to a thread, not to a process: every function here
// that changes or reads them acts on the calling OS thread only. The caller
// locks its goroutine to the thread (runtime.LockOSThread) that will execve
// the container's process, and calls, in this order:
//
//  1. DropBounding, while still uid 0 with CAP_SETPCAP;
//  2. prctl(PR_SET_KEEPCAPS, 1), then setgroups/setgid/setuid — without
//     KEEPCAPS the kernel empties the permitted set when uid 0 becomes
//     another uid;
//  3. Apply, as the last step before execve.
//
// A nil *specs.LinuxCapabilities means empty sets: the process gets no
// capabilities at all, as with runc.
//
// Capabilities outside the bounding set cannot be gained (the host's root may
// lack some: on estiba's CI host CAP_SYS_RESOURCE). runc passes them to
// capset and fails with a bare EPERM; Apply and DropBounding fail too, but
// say which capabilities are unavailable (errors wrap ErrUnavailable).
package caps

import (
	"errors"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by errors about capabilities the calling thread
// cannot gain because its bounding or permitted set lacks them.
var ErrUnavailable = errors.New("capability not available to this process")

// Sets are the five capability sets of a thread.
type Sets struct {
	Bounding, Effective, Permitted, Inheritable, Ambient Set
}

// Spec returns s as the five name lists of an OCI process (the inverse of
// FromSpec), e.g. to start from the current sets and add `exec --cap` ones.
func (s Sets) Spec() *specs.LinuxCapabilities {
	return &specs.LinuxCapabilities{
		Bounding: s.Bounding.Names(), Effective: s.Effective.Names(), Permitted: s.Permitted.Names(),
		Inheritable: s.Inheritable.Names(), Ambient: s.Ambient.Names(),
	}
}

// FromSpec parses the five lists of c. A nil c gives empty sets. Unknown
// names are an error naming them all.
func FromSpec(c *specs.LinuxCapabilities) (Sets, error) {
	var s Sets
	if c == nil {
		return s, nil
	}
	var errs []error
	for _, f := range []struct {
		name string
		list []string
		dst  *Set
	}{
		{"bounding", c.Bounding, &s.Bounding},
		{"effective", c.Effective, &s.Effective},
		{"permitted", c.Permitted, &s.Permitted},
		{"inheritable", c.Inheritable, &s.Inheritable},
		{"ambient", c.Ambient, &s.Ambient},
	} {
		set, err := Parse(f.list)
		if err != nil {
			errs = append(errs, fmt.Errorf("capabilities.%s: %w", f.name, err))
		}
		*f.dst = set
	}
	return s, errors.Join(errs...)
}

// Validate rejects unknown capability names with a clear error (runc only
// warns and drops them; a typo in a security setting deserves an error).
// Names the running kernel does not know (newer than it) are not errors:
// they are dropped when applied, as runc does (see Unsupported).
//
// It also rejects sets the kernel would refuse: an effective or ambient
// capability outside the permitted set, an ambient one outside the
// inheritable set (runc warns and skips those ambient capabilities).
func Validate(c *specs.LinuxCapabilities) error {
	s, err := FromSpec(c)
	if err != nil {
		return err
	}
	return s.validate()
}

func (s Sets) validate() error {
	if extra := s.Effective &^ s.Permitted; extra != 0 {
		return fmt.Errorf("capabilities.effective: %s not in the permitted set", list(extra))
	}
	if extra := s.Ambient &^ (s.Permitted & s.Inheritable); extra != 0 {
		return fmt.Errorf("capabilities.ambient: %s not in both the permitted and the inheritable sets", list(extra))
	}
	return nil
}

// Unsupported returns the capabilities of c that the running kernel does not
// know; Apply and DropBounding ignore them. Callers may log them as runc
// does ("ignoring unknown or unavailable capabilities").
func Unsupported(c *specs.LinuxCapabilities) ([]string, error) {
	s, err := FromSpec(c)
	if err != nil {
		return nil, err
	}
	last, err := LastCap()
	if err != nil {
		return nil, err
	}
	all := s.Bounding | s.Effective | s.Permitted | s.Inheritable | s.Ambient
	return (all &^ upTo(last)).Names(), nil
}

// DropBounding drops from the calling thread's bounding set every capability
// not in c.Bounding. It must run before the process changes uid (it needs
// CAP_SETPCAP). A capability in c.Bounding that the thread's bounding set
// lacks is an error wrapping ErrUnavailable: it could never be gained.
//
// It reads only the wanted capabilities and drops every other one without
// reading it first (dropping one the set lacks is a no-op for the kernel):
// one prctl per capability the kernel knows, not two.
func DropBounding(c *specs.LinuxCapabilities) error {
	s, err := FromSpec(c)
	if err != nil {
		return err
	}
	last, err := LastCap()
	if err != nil {
		return err
	}
	want := s.Bounding & upTo(last)
	have, err := readBounding(want, last)
	if err != nil {
		return err
	}
	if missing := want &^ have; missing != 0 {
		return fmt.Errorf("capabilities.bounding: %s: %w (host bounding set lacks them)", list(missing), ErrUnavailable)
	}
	for cp := 0; cp <= last; cp++ {
		if !want.Has(cp) {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(cp), 0, 0, 0); err != nil {
				return fmt.Errorf("drop %s from bounding set: %w", Name(cp), err)
			}
		}
	}
	return nil
}

// Apply sets the calling thread's effective, permitted and inheritable sets
// with capset(2), then its ambient set. It must run after the uid change
// (with PR_SET_KEEPCAPS set before it), as the last step before execve.
// Capabilities the kernel does not know are ignored; ones the thread cannot
// gain are an error wrapping ErrUnavailable.
func Apply(c *specs.LinuxCapabilities) error {
	s, err := FromSpec(c)
	if err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}
	last, err := LastCap()
	if err != nil {
		return err
	}
	known := upTo(last)
	s.Effective &= known
	s.Permitted &= known
	s.Inheritable &= known
	s.Ambient &= known
	_, perm, inh, err := capget()
	if err != nil {
		return err
	}
	if err := checkGainable(s, perm, inh, last); err != nil {
		return err
	}
	if err := capset(s.Effective, s.Permitted, s.Inheritable); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return setAmbient(s.Ambient, last)
}

// checkGainable reports, by name, what capset(2) would refuse with EPERM:
// new permitted capabilities outside the old permitted set (perm), and new
// inheritable ones outside the old inheritable (inh) and bounding sets
// (security/commoncap.c, cap_capset). Only the bounding bits that matter
// are read, usually none.
func checkGainable(want Sets, perm, inh Set, last int) error {
	if extra := want.Permitted &^ perm; extra != 0 {
		return fmt.Errorf("capabilities.permitted: %s: %w (not in the bounding or permitted set of the runtime)", list(extra), ErrUnavailable)
	}
	if extra := want.Inheritable &^ inh; extra != 0 {
		bnd, err := readBounding(extra, last)
		if err != nil {
			return err
		}
		if extra &^= bnd; extra != 0 {
			return fmt.Errorf("capabilities.inheritable: %s: %w (not in the bounding set)", list(extra), ErrUnavailable)
		}
	}
	return nil
}

// setAmbient replaces the ambient set. The kernel raises an ambient
// capability only if it is already permitted and inheritable, so this runs
// after capset.
func setAmbient(amb Set, last int) error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		if amb == 0 && err == unix.EINVAL {
			return nil // kernel older than 4.3, and nothing to raise
		}
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for cp := 0; cp <= last; cp++ {
		if amb.Has(cp) {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(cp), 0, 0); err != nil {
				return fmt.Errorf("raise ambient %s: %w", Name(cp), err)
			}
		}
	}
	return nil
}

// Current reads the five capability sets of the calling thread.
func Current() (Sets, error) {
	var s Sets
	var err error
	if s.Effective, s.Permitted, s.Inheritable, err = capget(); err != nil {
		return s, err
	}
	last, err := LastCap()
	if err != nil {
		return s, err
	}
	if s.Bounding, err = readBounding(upTo(last), last); err != nil {
		return s, err
	}
	for cp := 0; cp <= last; cp++ {
		on, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(cp), 0, 0)
		if err != nil {
			if err == unix.EINVAL {
				break // no ambient capabilities in this kernel
			}
			return s, fmt.Errorf("read ambient %s: %w", Name(cp), err)
		}
		if on == 1 {
			s.Ambient |= 1 << cp
		}
	}
	return s, nil
}

// capget reads the calling thread's effective, permitted and inheritable
// sets.
func capget() (eff, perm, inh Set, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, 0, fmt.Errorf("capget: %w", err)
	}
	eff = Set(data[0].Effective) | Set(data[1].Effective)<<32
	perm = Set(data[0].Permitted) | Set(data[1].Permitted)<<32
	inh = Set(data[0].Inheritable) | Set(data[1].Inheritable)<<32
	return eff, perm, inh, nil
}

// readBounding returns which capabilities of which (up to last) are in the
// calling thread's bounding set, one prctl each.
func readBounding(which Set, last int) (Set, error) {
	var s Set
	for cp := 0; cp <= last; cp++ {
		if !which.Has(cp) {
			continue
		}
		on, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(cp), 0, 0, 0)
		if err != nil {
			return 0, fmt.Errorf("read bounding %s: %w", Name(cp), err)
		}
		if on == 1 {
			s |= 1 << cp
		}
	}
	return s, nil
}

func capset(eff, perm, inh Set) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	return unix.Capset(&hdr, &data[0])
}

func list(s Set) string { return strings.Join(s.Names(), ", ") }

// Plan is what DropBounding, then Apply, would do, worked out in advance for
// another process that runs the system calls itself (the init stub,
// runtime/initstub) and inherits the calling thread's bounding and
// inheritable sets.
type Plan struct {
	// Drop are the capabilities to drop from the bounding set, in order.
	Drop []int
	// Effective, Permitted and Inheritable are capset(2)'s sets, after
	// the uid change.
	Effective, Permitted, Inheritable Set
	// Ambient are raised one by one after capset, the set cleared first.
	Ambient []int
}

// PlanFor checks c as DropBounding and Apply would, against the calling
// thread's bounding and inheritable sets and the given permitted set (the
// one the other process will hold when it calls capset), and returns the
// steps.
func PlanFor(c *specs.LinuxCapabilities, permitted Set) (Plan, error) {
	var p Plan
	s, err := FromSpec(c)
	if err != nil {
		return p, err
	}
	if err := s.validate(); err != nil {
		return p, err
	}
	last, err := LastCap()
	if err != nil {
		return p, err
	}
	known := upTo(last)
	want := s.Bounding & known
	have, err := readBounding(want, last)
	if err != nil {
		return p, err
	}
	if missing := want &^ have; missing != 0 {
		return p, fmt.Errorf("capabilities.bounding: %s: %w (host bounding set lacks them)", list(missing), ErrUnavailable)
	}
	for cp := 0; cp <= last; cp++ {
		if !want.Has(cp) {
			p.Drop = append(p.Drop, cp)
		}
	}
	s.Effective &= known
	s.Permitted &= known
	s.Inheritable &= known
	s.Ambient &= known
	_, _, inh, err := capget()
	if err != nil {
		return p, err
	}
	if err := checkGainable(s, permitted&known, inh, last); err != nil {
		return p, err
	}
	// capset runs after the drops: a new inheritable capability must be
	// in the bounding set as it will be then.
	if extra := s.Inheritable &^ inh &^ want; extra != 0 {
		return p, fmt.Errorf("capabilities.inheritable: %s: %w (not in the bounding set)", list(extra), ErrUnavailable)
	}
	p.Effective, p.Permitted, p.Inheritable = s.Effective, s.Permitted, s.Inheritable
	for cp := 0; cp <= last; cp++ {
		if s.Ambient.Has(cp) {
			p.Ambient = append(p.Ambient, cp)
		}
	}
	return p, nil
}

// Permitted is the calling thread's permitted set.
func Permitted() (Set, error) {
	_, perm, _, err := capget()
	return perm, err
}

// All is every capability the running kernel knows.
func All() (Set, error) {
	last, err := LastCap()
	if err != nil {
		return 0, err
	}
	return upTo(last), nil
}
