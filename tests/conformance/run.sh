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
# excluded); a program passes if it exits 0 with no failing assertion.
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
logs=${CONFORMANCE_LOGS:-$work/logs}
mkdir -p "$logs"
trap 'rm -rf "$work/bundle"' EXIT
mkdir -p "$work/bundle"
cp "$VAL/runtimetest" "$VAL/rootfs-amd64.tar.gz" "$work/bundle/"
cd "$work/bundle"

declare -A expected
if [ -f "$EXPECTED" ]; then
	while read -r name reason; do
		[[ -z "$name" || "$name" == \#* ]] && continue
		expected[$name]=$reason
	done < "$EXPECTED"
fi

pass=0 fail=0 asserts_ok=0 asserts_bad=0
unexpected_fail=() unexpected_pass=()
for prog in "$VAL"/*; do
	name=$(basename "$prog")
	case $name in runtimetest|*.tar.gz) continue ;; esac
	[ -f "$prog" ] && [ -x "$prog" ] || continue
	RUNTIME=$RUNTIME timeout "$TIMEOUT" unshare -m --propagation private "$prog" > "$logs/$name.tap" 2>&1
	rc=$?
	ok=$(grep -E '^ok [0-9]+' "$logs/$name.tap" | grep -cvE '# (SKIP|TODO)')
	bad=$(grep -E '^not ok [0-9]+' "$logs/$name.tap" | grep -cvE '# (SKIP|TODO)')
	asserts_ok=$((asserts_ok + ok)) asserts_bad=$((asserts_bad + bad))
	if [ $rc -eq 0 ] && [ "$bad" -eq 0 ] && [ "$ok" -gt 0 ]; then
		result=PASS pass=$((pass + 1))
		[ -n "${expected[$name]:-}" ] && unexpected_pass+=("$name")
	else
		result=FAIL fail=$((fail + 1))
		[ -z "${expected[$name]:-}" ] && unexpected_fail+=("$name")
	fi
	printf '%-40s %s  ok=%-4s not-ok=%-3s rc=%s%s\n' "$name" "$result" "$ok" "$bad" "$rc" \
		"${expected[$name]:+  (expected: ${expected[$name]})}"
done

echo "conformance: $(basename "$RUNTIME"): $pass/$((pass + fail)) programs pass, $asserts_ok assertions ok, $asserts_bad not ok (logs: $logs)"
if [ $report_only = 1 ]; then exit 0; fi
[ ${#unexpected_pass[@]} -eq 0 ] || echo "conformance: unexpected passes (remove from $(basename "$EXPECTED")): ${unexpected_pass[*]}"
if [ ${#unexpected_fail[@]} -ne 0 ]; then
	echo "conformance: UNEXPECTED FAILURES: ${unexpected_fail[*]}"
	for n in "${unexpected_fail[@]}"; do echo "--- $n"; grep -E '^not ok|^#|error' "$logs/$n.tap" | head -15; done
	exit 1
fi
echo "conformance: no unexpected failures"
