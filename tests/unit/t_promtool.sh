#!/bin/sh
# promtool check metrics on a full exposition (every metric, every label
# value) from tests/tools/metrics-exposition. TAP. Skipped, saying why, when
# promtool (Debian package `prometheus`) is not installed.
set -u
tool=${METRICS_EXPOSITION:-./tests/tools/metrics-exposition}
if ! command -v promtool >/dev/null 2>&1; then
	echo "1..0 # SKIP promtool not installed (apt-get install prometheus)"
	exit 0
fi
out=$(mktemp) || exit 1
trap 'rm -f "$out" "$out.lint"' EXIT
n=0 failed=0
t() { # t OK DESCRIPTION
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}
"$tool" >"$out" && [ -s "$out" ]
t $? "metrics-exposition ran ($(wc -c <"$out") bytes)"
# promtool reads the exposition on stdin; lint problems go to stdout or
# stderr and set a non-zero status.
promtool check metrics <"$out" >"$out.lint" 2>&1
rc=$?
sed 's/^/# /' "$out.lint"
t $rc "promtool check metrics: no problems ($(promtool --version 2>&1 | head -n 1))"
[ -s "$out.lint" ]
t $((1 - $?)) "promtool check metrics printed nothing"
echo "1..$n"
exit $failed
