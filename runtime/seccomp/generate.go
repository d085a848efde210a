package seccomp

import (
	"cmp"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// Offsets in struct seccomp_data. Arguments are 64-bit little-endian on
// x86: the low word comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

const errnoENOSYS = 38

// entry is what one architecture's filter does for one syscall number.
type entry struct {
	nr        uint32
	alts      []alt  // conditional rules, in profile order
	uncond    uint32 // action when no alternative matches, if hasUncond
	hasUncond bool
}

type alt struct {
	act   uint32
	conds []cond
}

// target is where a syscall number leads: a constant verdict, or the code
// checking its arguments.
type target struct {
	code bool
	ret  uint32
	l    label
}

// segment is a range of syscall numbers [start, end] with one target.
type segment struct {
	start, end uint32
	t          target
}

type gen struct {
	b       *builder
	p       *profile
	badArch label
	plans   map[*arch]*plan
	// shareX32 lets x32 reuse x86_64's tree (x32OnX86_64Tree); tests
	// turn it off to compare against the separate trees.
	shareX32 bool
}

// generate lays the filter out as:
//
//	ld arch; one jeq per audit arch value; ret KILL_PROCESS
//	per audit arch: ld nr; range checks; binary search; argument checks; rets
func generate(p *profile, list []*arch) []bpf.RawInstruction {
	return generateShared(p, list, true)
}

// generateShared is generate, with or without x32OnX86_64Tree.
func generateShared(p *profile, list []*arch, shareX32 bool) []bpf.RawInstruction {
	g := &gen{b: newBuilder(), p: p, plans: map[*arch]*plan{}, shareX32: shareX32}
	g.badArch = g.b.ret(RetKillProcess)
	var x86_64, x32, i386 *arch
	for _, a := range list {
		switch a {
		case archX86_64:
			x86_64 = a
		case archX32:
			x32 = a
		case archX86:
			i386 = a
		}
	}
	type section struct {
		audit uint32
		start label
	}
	var secs []section
	// Emitted backwards: the first section in the program comes last.
	if i386 != nil {
		secs = append(secs, section{auditArchI386, g.i386Section(i386)})
	}
	if x86_64 != nil || x32 != nil {
		secs = append(secs, section{auditArchX86_64, g.x86_64Section(x86_64, x32)})
	}
	next := g.badArch
	for _, s := range secs {
		next = g.b.cond(jeq, s.audit, s.start, next)
	}
	g.b.load(offArch)
	return g.b.program()
}

func (g *gen) i386Section(a *arch) label {
	g.archBody(a)
	return g.b.load(offNr)
}

// x86_64Section handles AUDIT_ARCH_X86_64, shared by x86_64 and x32: the
// x32 bit in the syscall number tells them apart. Either may be absent.
func (g *gen) x86_64Section(x86_64, x32 *arch) label {
	stub := g.badArch
	var pl64 *plan
	if x86_64 != nil {
		pl64 = g.plan(x86_64)
		stub = g.stub(pl64)
	}
	// x86_64's tree first: emitted backwards, it comes after x32's code,
	// which may jump into it.
	tree := label(-1)
	if pl64 != nil && pl64.named {
		tree = g.tree(g.segments(pl64, 0))
	}
	x32Code := g.badArch
	if x32 != nil {
		if pl32 := g.plan(x32); tree >= 0 && g.shareX32 && x32Shares(pl64, pl32, g.p.def) {
			x32Code = g.x32OnX86_64Tree(pl64, pl32, tree, stub)
		} else {
			x32Code = g.archBody(x32)
		}
	}
	// Numbers above x86_64's highest: those with the x32 bit are x32's,
	// except -1 (a tracer skipping a syscall), which x86_64 handles.
	upper := g.b.cond(jge, x32SyscallBit, x32Code, stub)
	upper = g.b.cond(jeq, 0xffffffff, stub, upper)
	if tree >= 0 {
		g.b.cond(jgt, pl64.highest, upper, tree)
	}
	return g.b.load(offNr)
}

// x32Low is where x32's own numbers start: below it, x32 numbers are
// x86_64's ("common" calls), or name nothing on x32.
const x32Low = x32SyscallBit | 512

// x32OnX86_64Tree emits x32's dispatch, A holding a number with the x32
// bit, reusing x86_64's tree (see x32Shares) for numbers below x32Low:
// half the filter's size for Docker's profile.
func (g *gen) x32OnX86_64Tree(pl64, pl32 *plan, tree64, stub64 label) label {
	high := g.stub(pl32)
	if pl32.highest >= x32Low {
		high = g.b.cond(jgt, pl32.highest, high, g.tree(g.segments(pl32, x32Low)))
	}
	low := g.b.cond(jgt, pl64.highest, stub64, tree64)
	low = g.b.and(^uint32(x32SyscallBit))
	return g.b.cond(jge, x32Low, high, low)
}

// x32Shares tells whether x86_64's tree decides every x32 number below
// x32Low (the bit cleared) as x32's own would: the same rules for each
// number x32's table has, and any verdict for the numbers it lacks, which
// the kernel's x32 table maps to sys_ni_syscall (-ENOSYS; x86_64-only calls,
// since 5.4). Numbers neither names, above x86_64's highest, get x86_64's
// stub instead of the default action: a refusal either way.
func x32Shares(pl64, pl32 *plan, def uint32) bool {
	by64 := make(map[uint32]*entry, len(pl64.entries))
	for i := range pl64.entries {
		by64[pl64.entries[i].nr] = &pl64.entries[i]
	}
	named := make(map[uint32]bool, len(pl32.a.syscalls))
	for _, e := range pl32.a.syscalls {
		named[e.nr&^x32SyscallBit] = true
	}
	done := 0
	for i := range pl32.entries {
		e := &pl32.entries[i]
		n := e.nr &^ x32SyscallBit
		if e.nr >= x32Low {
			continue
		}
		f := by64[n]
		if f == nil || !sameEntry(e, f, def) {
			return false
		}
		done++
	}
	// x86_64 entries at numbers x32 has but does not name a rule for.
	shared := 0
	for n := range by64 {
		if n < 512 && named[n] {
			shared++
		}
	}
	return shared == done
}

// sameEntry tells whether two entries decide alike, whatever their
// numbers, under default action def: compared trimmed, as entryTarget
// emits them (it trims in place, and may have run on one of them).
func sameEntry(a, b *entry, def uint32) bool {
	fa, aa := trimmed(a, def)
	fb, ab := trimmed(b, def)
	return fa == fb && slices.EqualFunc(aa, ab, func(x, y alt) bool {
		return x.act == y.act && slices.Equal(x.conds, y.conds)
	})
}

// trimmed is e's fallback and its alternatives but the trailing ones that
// decide what the fallback decides: those change nothing (earlier ones
// may: they shadow later alternatives).
func trimmed(e *entry, def uint32) (uint32, []alt) {
	fallback := def
	if e.hasUncond {
		fallback = e.uncond
	}
	alts := e.alts
	for len(alts) > 0 && alts[len(alts)-1].act == fallback {
		alts = alts[:len(alts)-1]
	}
	return fallback, alts
}

// stub is where a number above the profile's highest goes: ENOSYS unless
// the default action lets unknown syscalls through anyway (runc counts
// TRACE among those: a tracer handles new syscalls itself).
func (g *gen) stub(pl *plan) label {
	d := g.p.def
	if d == RetAllow || d == RetLog || d&^RetData == RetTrace || !pl.named {
		return g.b.ret(d)
	}
	return g.b.ret(RetErrno | errnoENOSYS)
}

// archBody emits the dispatch of a's syscall numbers, A holding the number:
// numbers above the highest the profile names get the stub, those without
// a rule the default action.
func (g *gen) archBody(a *arch) label {
	pl := g.plan(a)
	if !pl.named {
		return g.b.ret(g.p.def)
	}
	tree := g.tree(g.segments(pl, 0))
	return g.b.cond(jgt, pl.highest, g.stub(pl), tree)
}

// plan is what one architecture's filter does.
type plan struct {
	a       *arch
	entries []entry // by number
	// highest is the highest number the profile names on this arch,
	// counting rules dropped for having the default action, as runc does.
	highest uint32
	named   bool // the profile names at least one syscall of this arch
}

// plan groups the profile's rules by a's syscall numbers.
func (g *gen) plan(a *arch) *plan {
	if pl := g.plans[a]; pl != nil {
		return pl
	}
	pl := &plan{a: a}
	g.plans[a] = pl
	byNr := make(map[uint32]int, 512)
	add := func(nr uint32, r *rule, alts [][]cond) {
		if !pl.named || nr > pl.highest {
			pl.highest, pl.named = nr, true
		}
		if r.dropped {
			return
		}
		i, ok := byNr[nr]
		if !ok {
			i = len(pl.entries)
			byNr[nr] = i
			pl.entries = append(pl.entries, entry{nr: nr})
		}
		e := &pl.entries[i]
		if alts == nil {
			if !e.hasUncond {
				e.uncond, e.hasUncond = r.act, true
			}
			return
		}
		for _, cs := range alts {
			e.alts = append(e.alts, alt{act: r.act, conds: cs})
		}
	}
	for i := range g.p.rules {
		r := &g.p.rules[i]
		for _, name := range r.names {
			if nr, ok := a.syscalls.lookup(name); ok {
				add(nr|a.nrBits, r, r.alts)
			}
			if m, ok := a.multiplexed(name); ok {
				// Arguments behind socketcall's pointer cannot be
				// checked: the rule keeps only the call number, as
				// libseccomp does.
				add(m.nr, r, [][]cond{{{arg: 0, op: specs.OpEqualTo, val: uint64(m.call)}}})
			}
		}
	}
	slices.SortFunc(pl.entries, func(x, y entry) int { return cmp.Compare(x.nr, y.nr) })
	return pl
}

// segments covers [a's first number, pl.highest] with ranges of equal
// verdict, emitting the argument checks of conditional entries.
func (g *gen) segments(pl *plan, from uint32) []segment {
	var segs []segment
	add := func(start, end uint32, t target) {
		if n := len(segs); n > 0 && !t.code && !segs[n-1].t.code && segs[n-1].t.ret == t.ret && segs[n-1].end+1 == start {
			segs[n-1].end = end
			return
		}
		segs = append(segs, segment{start, end, t})
	}
	next := max(pl.a.nrBits, from)
	for i := range pl.entries {
		e := &pl.entries[i]
		if e.nr < next {
			continue
		}
		if e.nr > next {
			add(next, e.nr-1, target{ret: g.p.def})
		}
		add(e.nr, e.nr, g.entryTarget(e, pl.a.args32))
		next = e.nr + 1
	}
	if next <= pl.highest {
		add(next, pl.highest, target{ret: g.p.def})
	}
	return segs
}

func (g *gen) entryTarget(e *entry, args32 bool) target {
	fallback, alts := trimmed(e, g.p.def)
	e.alts = alts
	if len(e.alts) == 0 {
		return target{ret: fallback}
	}
	next := g.b.ret(fallback)
	for i := len(e.alts) - 1; i >= 0; i-- {
		a := e.alts[i]
		pass := g.b.ret(a.act)
		for j := len(a.conds) - 1; j >= 0; j-- {
			pass = g.condCode(a.conds[j], args32, pass, next)
		}
		next = pass
	}
	return target{code: true, l: next}
}

// resolve returns a label for t, emitting a ret near here if needed.
func (g *gen) resolve(t target) label {
	if t.code {
		return t.l
	}
	return g.b.ret(t.ret)
}

// tree emits a binary search over segs (sorted, contiguous), with chains
// at its bottom (see chain).
func (g *gen) tree(segs []segment) label {
	if len(segs) == 1 {
		return g.resolve(segs[0].t)
	}
	if len(segs) <= chainLen {
		return g.chain(segs)
	}
	mid := len(segs) / 2
	right := g.tree(segs[mid:])
	left := g.tree(segs[:mid])
	return g.b.cond(jge, segs[mid].start, right, left)
}

// chainLen is how many segments the bottom of the tree tests one after
// another rather than by halves: at most chainLen-1 steps instead of
// ~log2(chainLen), for a smaller program once the kernel has it (see
// chain), and taken only by the syscalls the kernel's verdict cache
// (SECCOMP_ARCH_NATIVE, 5.11) does not already decide without the filter.
const chainLen = 8

// chain emits segs (2 to chainLen) as a chain: "jge segs[1].start else
// ret segs[0]; jge segs[2].start else ...". The kernel runs a classic
// filter as eBPF, where a conditional jump whose targets are both
// elsewhere is two instructions (the jump and a ja). A binary search's
// bottom node chooses between two leaves, mostly rets, neither of which
// can follow it, so half its nodes cost two; in a chain every node but the
// last has the next one as a target. Docker's profile: 538 eBPF
// instructions → 477 (classic: 432 either way), so the kernel's copy fits
// one page instead of two (TestDockerFilterOnePage); the steps of an
// x86_64 syscall through it, 11.0 → 11.9 on average.
func (g *gen) chain(segs []segment) label {
	n := len(segs)
	next := g.b.cond(jge, segs[n-1].start, g.resolve(segs[n-1].t), g.resolve(segs[n-2].t))
	for i := n - 2; i >= 1; i-- {
		below := g.resolve(segs[i-1].t)
		next = g.b.cond(jge, segs[i].start, next, below)
	}
	return next
}

// hiVerdict is what comparing the high words decides.
type hiVerdict int

const (
	hiPass hiVerdict = iota
	hiFail
	hiCheckLow
)

// condCode emits one argument condition: jump to pass if it holds, to fail
// if not. 64-bit values are compared high word first, as unsigned numbers.
// On 32-bit architectures the kernel zero-extends arguments, so the high
// word is 0 and its comparison is decided here, at compile time.
func (g *gen) condCode(c cond, args32 bool, pass, fail label) label {
	lo, hi := offArgs+8*c.arg, offArgs+8*c.arg+4
	vlo, vhi := uint32(c.val), uint32(c.val>>32)
	if args32 {
		switch staticHigh(c) {
		case hiPass:
			return pass
		case hiFail:
			return fail
		}
		return g.lowCode(c, lo, vlo, pass, fail)
	}
	low := g.lowCode(c, lo, vlo, pass, fail)
	b := g.b
	switch c.op {
	case specs.OpEqualTo:
		b.cond(jeq, vhi, low, fail)
	case specs.OpNotEqual:
		b.cond(jeq, vhi, low, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		eq := b.cond(jeq, vhi, low, fail)
		b.cond(jgt, vhi, pass, eq)
	case specs.OpLessThan, specs.OpLessEqual:
		eq := b.cond(jeq, vhi, low, pass)
		b.cond(jgt, vhi, fail, eq)
	case specs.OpMaskedEqual:
		b.cond(jeq, uint32(c.val2>>32), low, fail)
		b.and(vhi)
	}
	return b.load(hi)
}

// lowCode compares the low words.
func (g *gen) lowCode(c cond, off, v uint32, pass, fail label) label {
	b := g.b
	switch c.op {
	case specs.OpEqualTo:
		b.cond(jeq, v, pass, fail)
	case specs.OpNotEqual:
		b.cond(jeq, v, fail, pass)
	case specs.OpGreaterThan:
		b.cond(jgt, v, pass, fail)
	case specs.OpGreaterEqual:
		b.cond(jge, v, pass, fail)
	case specs.OpLessThan:
		b.cond(jge, v, fail, pass)
	case specs.OpLessEqual:
		b.cond(jgt, v, fail, pass)
	case specs.OpMaskedEqual:
		b.cond(jeq, uint32(c.val2), pass, fail)
		b.and(v)
	}
	return b.load(off)
}

// staticHigh decides a condition's high-word comparison when the argument's
// high word is known to be 0.
func staticHigh(c cond) hiVerdict {
	vhi := uint32(c.val >> 32)
	switch c.op {
	case specs.OpEqualTo:
		if vhi != 0 {
			return hiFail
		}
	case specs.OpNotEqual:
		if vhi != 0 {
			return hiPass
		}
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		if vhi != 0 {
			return hiFail
		}
	case specs.OpLessThan, specs.OpLessEqual:
		if vhi != 0 {
			return hiPass
		}
	case specs.OpMaskedEqual:
		if uint32(c.val2>>32) != 0 {
			return hiFail
		}
	}
	return hiCheckLow
}
