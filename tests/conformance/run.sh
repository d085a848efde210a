#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite against a runtime and compares
# the result with expected-failures.txt.
#
#   tests/conformance/run.sh [--report-only] [RUNTIME]
#
# RUNTIME defaults to bin/estiba-runtime of this tree. Every program of the
# suite runs from a temp dir holding runtimetest and rootfs-amd64.tar.gz, in
# a private mount namespace of its own (linux_ns_itype has the runtime join,
# and pivot, its caller's mount namespace). The TAP
# output is counted per program (ok / not ok, TODO and SKIP directives
# excluded); a program passes if it exits 0 with no failing assertion and no
# stand-alone error diagnostic (see tapcount).
# Exit status: non-zero on a failure not listed as expected (unexpected
# passes are reported, not failed). --report-only never fails (for peers).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
report_only=0
if [ "${1:-}" = --report-only ]; then report_only=1; shift; fi
RUNTIME=$(realpath "${1:-$here/../../bin/estiba-runtime}")
VAL=${VALIDATION_DIR:-/usr/local/lib/estiba-tools/validation}
EXPECTED=${EXPECTED_FAILURES:-$here/expected-failures.txt}
TIMEOUT=${CONFORMANCE_TIMEOUT:-120}

[ -x "$RUNTIME" ] || { echo "conformance: runtime $RUNTIME not found (make build)"; exit 1; }
[ -d "$VAL" ] || { echo "conformance: $VAL missing (scripts/setup.sh)"; exit 1; }
work=$(mktemp -d /tmp/estiba-conformance.XXXXXX)
# Logs stay only where CONFORMANCE_LOGS says; unexpected failures are
# excerpted below either way.
logs=${CONFORMANCE_LOGS:-$work/logs}
mkdir -p "$logs"
trap 'rm -rf "$work"' EXIT
# Some of the suite's programs leave their bundles (ocitest*) in TMPDIR.
# Others map the container's root to another uid, which must be able to
# reach its bundle: the directories are searchable by all.
chmod 711 "$work"
mkdir -m 755 "$work/tmp"
export TMPDIR=$work/tmp
mkdir -p "$work/bundle"
cp "$VAL/runtimetest" "$VAL/rootfs-amd64.tar.gz" "$work/bundle/"
cd "$work/bundle"

# tapcount FILE prints "ok not-ok errors": assertions (SKIP and TODO left
# out) and error diagnostics standing alone. The suite reports some failures
# only as a YAML block with an "error" after the TAP header, not attached to
# any test line; the block after an "ok" line (its description may span
# lines) may carry an expected error.
tapcount() {
	awk '
	/^(not )?ok [0-9]+/ {
		attached = 1
		if ($0 !~ /# (SKIP|TODO)/) { if ($1 == "not") bad++; else ok++ }
		next
	}
	/^  ---/ { inyaml = 1; standalone = !attached; next }
	/^  \.\.\./ { inyaml = 0; attached = 0; next }
	inyaml && standalone && /"error": "[^"]/ { diag++ }
	END { print ok + 0, bad + 0, diag + 0 }' "$1"
}

declare -A expected
if [ -f "$EXPECTED" ]; then
	while read -r name reason; do
		[[ -z "$name" || "$name" == \#* ]] && continue
		expected[$name]=$reason
	done < "$EXPECTED"
fi

pass=0 fail=0 asserts_ok=0 asserts_bad=0
unexpected_fail=() unexpected_pass=() retried=()
runprog() { # runprog PROG LOG
	RUNTIME=$RUNTIME timeout "$TIMEOUT" unshare -m --propagation private "$1" > "$2" 2>&1
}
for prog in "$VAL"/*; do
	name=$(basename "$prog")
	case $name in runtimetest|*.tar.gz) continue ;; esac
	[ -f "$prog" ] && [ -x "$prog" ] || continue
	runprog "$prog" "$logs/$name.tap"
	rc=$?
	read -r ok bad diag < <(tapcount "$logs/$name.tap")
	if [ -z "${expected[$name]:-}" ] && { [ $rc -ne 0 ] || [ "$bad" -ne 0 ] || [ "$diag" -ne 0 ]; }; then
		# One retry for a failure nobody expected: several programs of the
		# suite race with themselves. The first run's log is kept and the
		# retry is reported, so a flaky failure of ours stays visible.
		mv "$logs/$name.tap" "$logs/$name.first.tap"
		retried+=("$name")
		runprog "$prog" "$logs/$name.tap"
		rc=$?
		read -r ok bad diag < <(tapcount "$logs/$name.tap")
	fi
	asserts_ok=$((asserts_ok + ok)) asserts_bad=$((asserts_bad + bad))
	if [ $rc -eq 0 ] && [ "$bad" -eq 0 ] && [ "$diag" -eq 0 ]; then
		result=PASS pass=$((pass + 1))
		[ -n "${expected[$name]:-}" ] && unexpected_pass+=("$name")
	else
		result=FAIL fail=$((fail + 1))
		[ -z "${expected[$name]:-}" ] && unexpected_fail+=("$name")
	fi
	printf '%-40s %s  ok=%-4s not-ok=%-3s rc=%s%s\n' "$name" "$result" "$ok" "$bad" "$rc" \
		"${expected[$name]:+  (expected: ${expected[$name]})}"
done

echo "conformance: $(basename "$RUNTIME"): $pass/$((pass + fail)) programs pass, $asserts_ok assertions ok, $asserts_bad not ok${CONFORMANCE_LOGS:+ (logs: $logs)}"
if [ $report_only = 1 ]; then exit 0; fi
for n in "${retried[@]}"; do
	echo "conformance: $n failed once and was retried; first run:"
	grep -E '^not ok|error' "$logs/$n.first.tap" | head -15
done
[ ${#unexpected_pass[@]} -eq 0 ] || echo "conformance: unexpected passes (remove from $(basename "$EXPECTED")): ${unexpected_pass[*]}"
if [ ${#unexpected_fail[@]} -ne 0 ]; then
	echo "conformance: UNEXPECTED FAILURES: ${unexpected_fail[*]}"
	for n in "${unexpected_fail[@]}"; do echo "--- $n"; grep -E '^not ok|^#|error' "$logs/$n.tap" | head -15; done
	exit 1
fi
echo "conformance: no unexpected failures"
