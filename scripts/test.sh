#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root, after scripts/setup.sh and
# make build). Stages run in order; every stage runs even if one before it
# failed, and the script exits non-zero if any failed. The last line is the Go
# test count in the form CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/local/lib/estiba-tools/bin:$PATH"
# Logs go to ESTIBA_TEST_LOGS if given, else to a temp dir that is removed
# after a green run and kept (its path printed) after a failed one.
own_logs=0
[ -n "${ESTIBA_TEST_LOGS:-}" ] || own_logs=1
LOGDIR=${ESTIBA_TEST_LOGS:-$(mktemp -d /tmp/estiba-test-logs.XXXXXX)}
failed=()

stage() { # stage NAME CMD...: run one stage, record its result
	local name=$1; shift
	echo "=== stage $name"
	local start=$SECONDS
	if "$@"; then echo "=== stage $name: ok ($((SECONDS - start))s)"
	else echo "=== stage $name: FAILED ($((SECONDS - start))s)"; failed+=("$name"); fi
}

gotests() {
	# -p 1: integration tests share the host's cgroups, mounts and nftables;
	# running packages one at a time keeps their leak checks meaningful.
	go test -count=1 -p 1 -timeout 20m -json ./... > "$LOGDIR/go-test.json"
	local rc=$?
	go run ./internal/tools/testsum < "$LOGDIR/go-test.json" > "$LOGDIR/go-test.sum" || rc=1
	grep -v '^tests: ' "$LOGDIR/go-test.sum"
	return $rc
}

stage vet go vet ./...
stage gofmt bash -c 'out=$(gofmt -l $(git ls-files "*.go")); [ -z "$out" ] || { echo "gofmt needed: $out"; exit 1; }'
stage go-test gotests
stage cgroup-v2-vm env V2VM_EXTRA="bin/estiba-runtime bin/estiba bin/estibad bin/estiba-init bin/estiba-init-stub" tests/v2vm/run-tests.sh  # real-cgroup tests again on a v2-only kernel (qemu)
# Fuzz runs are bounded by executions, not seconds: a slow exec on a loaded
# machine otherwise ends the run with "context deadline exceeded" (a race in
# Go's fuzz coordinator, golang/go#75804, unfixed in go1.26).
stage fuzz-image bash -c 'go test -run "^$" -fuzz "^FuzzUnpack$" -fuzztime 3000x -parallel 2 ./image/unpack && go test -run "^$" -fuzz "^FuzzLoad$" -fuzztime 1000x -parallel 2 ./image/archive'
stage fuzz-seccomp go test -run=NONE -fuzz=FuzzCompile -fuzztime=200000x -timeout=5m -fuzzminimizetime=50x -parallel 2 ./runtime/seccomp
stage fuzz-registry bash -c 'go test -run "^$" -fuzz "^FuzzParse$" -fuzztime 300000x -timeout 5m -parallel 2 ./image/reference && go test -run "^$" -fuzz "^FuzzParseManifest$" -fuzztime 30000x -timeout 5m -parallel 2 ./image/registry'
stage fuzz-specjson go test -run "^$" -fuzz "^FuzzDecode$" -fuzztime 100000x -timeout 5m -parallel 2 ./runtime/specjson
stage oci-conformance tests/conformance/run.sh  # runtime-tools validation suite vs tests/conformance/expected-failures.txt

echo "stages failed: ${#failed[@]} ${failed[*]:-}"
summary=$(grep '^tests: ' "$LOGDIR/go-test.sum" 2>/dev/null || echo "tests: 0 passed, 1 failed")
if [ ${#failed[@]} -eq 0 ]; then
	((own_logs)) && rm -rf "$LOGDIR"
else
	echo "logs kept in $LOGDIR"
fi
echo "$summary"
[ ${#failed[@]} -eq 0 ]
