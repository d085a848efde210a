package seccomp

import (
	"errors"
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// profile is a validated LinuxSeccomp with actions resolved to SECCOMP_RET_*
// values.
type profile struct {
	def    uint32
	notify bool
	// rules are all the profile's rules; those whose action is the
	// default are marked dropped: they add no code (runc drops them too,
	// libseccomp refuses them) but count for the ENOSYS stub's bound.
	rules []rule
}

// rule is one entry of the profile's syscalls. alts are ORed alternatives,
// each a list of ANDed conditions; no alternatives means unconditional.
type rule struct {
	names   []string
	act     uint32
	dropped bool
	alts    [][]cond
}

type cond struct {
	arg       uint32 // 0..5
	op        specs.LinuxSeccompOperator
	val, val2 uint64
}

// maxArgs is the number of syscall arguments seccomp_data carries.
const maxArgs = 6

func parseProfile(p *specs.LinuxSeccomp) (*profile, error) {
	def, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: defaultAction: %w", err)
	}
	if p.DefaultAction == specs.ActNotify {
		// Every syscall would wait for a supervisor, including the ones
		// the runtime makes to hand it the listener fd.
		return nil, errors.New("seccomp: defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
	}
	prof := &profile{def: def}
	for i, s := range p.Syscalls {
		r, err := parseRule(s)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscalls[%d] %v: %w", i, s.Names, err)
		}
		prof.notify = prof.notify || s.Action == specs.ActNotify
		r.dropped = r.act == def
		prof.rules = append(prof.rules, r)
	}
	return prof, nil
}

func parseRule(s specs.LinuxSyscall) (rule, error) {
	r := rule{names: s.Names}
	if len(s.Names) == 0 {
		return r, errors.New("no syscall names")
	}
	var err error
	if r.act, err = action(s.Action, s.ErrnoRet); err != nil {
		return r, err
	}
	var all []cond
	perArg := [maxArgs]int{}
	repeated := false
	for _, a := range s.Args {
		c, err := parseCond(a)
		if err != nil {
			return r, err
		}
		perArg[c.arg]++
		repeated = repeated || perArg[c.arg] > 1
		all = append(all, c)
	}
	switch {
	case len(all) == 0:
	case repeated:
		// runc's rule: two conditions on one argument make one rule
		// each, ORed (libseccomp once could not AND them).
		for _, c := range all {
			r.alts = append(r.alts, []cond{c})
		}
	default:
		r.alts = [][]cond{all}
	}
	return r, nil
}

func parseCond(a specs.LinuxSeccompArg) (cond, error) {
	if a.Index >= maxArgs {
		return cond{}, fmt.Errorf("argument index %d out of range 0..%d", a.Index, maxArgs-1)
	}
	switch a.Op {
	case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
	default:
		return cond{}, fmt.Errorf("unknown operator %q", a.Op)
	}
	return cond{arg: uint32(a.Index), op: a.Op, val: a.Value, val2: a.ValueTwo}, nil
}

// action resolves an action name and its errnoRet to a SECCOMP_RET_* value.
// ERRNO and TRACE default to EPERM, as in runc.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(1) // EPERM
	if errnoRet != nil {
		if a != specs.ActErrno && a != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %q", a)
		}
		if *errnoRet > uint(RetData) {
			return 0, fmt.Errorf("errnoRet %d out of range 0..%d", *errnoRet, RetData)
		}
		data = uint32(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return RetKillThread, nil
	case specs.ActKillProcess:
		return RetKillProcess, nil
	case specs.ActTrap:
		return RetTrap, nil
	case specs.ActErrno:
		return RetErrno | data, nil
	case specs.ActTrace:
		return RetTrace | data, nil
	case specs.ActAllow:
		return RetAllow, nil
	case specs.ActLog:
		return RetLog, nil
	case specs.ActNotify:
		return RetUserNotif, nil
	case "":
		return 0, errors.New("no action")
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// skipped lists the names no architecture in list knows.
func skipped(p *profile, list []*arch) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range p.rules {
		if r.dropped {
			continue
		}
		for _, n := range r.names {
			known := false
			for _, a := range list {
				_, ok := a.syscalls.lookup(n)
				_, muxed := a.multiplexed(n)
				known = known || ok || muxed
			}
			if !known && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}
