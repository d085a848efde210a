#!/usr/bin/env bash
# Pull a 4-layer, 32 MiB image from a local docker-registry into files:
# estiba's registry client (sequential and 4 parallel blob fetches) against
# crane (go-containerregistry, a process per pull) in one `go test -bench` run.
# Prints the median ns/op of each and the ratios to crane.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/lib/estiba-tools/bin:$PATH"
COUNT=${COUNT:-5}
out=$(go test -run '^$' -bench '^BenchmarkPull$' -benchtime 5x -count "$COUNT" ./image/registry/)
echo "$out" | grep '^BenchmarkPull'
echo "$out" | awk '
/^BenchmarkPull\// { split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); v[a[2]] = v[a[2]] " " $3 }
function median(s,   n, x, i, j, t) {
	n = split(s, x, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] + 0 < x[i] + 0) { t = x[i]; x[i] = x[j]; x[j] = t }
	return (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
}
END {
	c = median(v["crane"])
	for (k in v) printf "%-12s median %8.1f ms  ratio to crane %.2f\n", k, median(v[k]) / 1e6, median(v[k]) / c
}'
