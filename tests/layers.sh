#!/bin/sh
# The layer check: no source file in src/ includes the header of a module
# above its own. The order is the one docs/design.md states between the
# markers "<!-- layers -->" and "<!-- /layers -->": one line per layer,
# bottom first, "name: module module ...". A module may include the
# headers of the layers below its own and of the modules listed before it
# in its own layer; so the include graph of src/ has no cycle. Every file
# of src/ must belong to a listed module. TAP output.
#
#   tests/layers.sh [srcdir]     (srcdir defaults to the script's ../)
set -u
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
doc="$top/docs/design.md"
[ -r "$doc" ] || { echo "1..0 # SKIP no $doc"; exit 0; }

order=$(sed -n '/<!-- layers -->/,/<!-- \/layers -->/p' "$doc" |
	grep -E '^[a-z0-9_-]+:' | sed 's/^[^:]*://; s/`//g' | tr -s ' \t' '\n' | grep -v '^$')
[ -n "$order" ] || { echo "1..1"; echo "not ok 1 - no layer table in docs/design.md"; exit 1; }

rank() { # prints the module's position in the order, or nothing
	printf '%s\n' "$order" | grep -nx "$1" | cut -d: -f1
}

files=$(cd "$top" && ls src/*.c src/*.h)
n=0; failed=0
echo "1..$(printf '%s\n' "$files" | wc -l | tr -d ' ')"
for f in $files; do
	n=$((n + 1))
	m=$(basename "$f"); m=${m%.*}
	r=$(rank "$m")
	if [ -z "$r" ]; then
		echo "not ok $n - $f: module '$m' is in no layer of docs/design.md"
		failed=1; continue
	fi
	bad=""
	for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' "$top/$f"); do
		[ "$inc" = autoconfig ] && continue
		ri=$(rank "$inc")
		if [ -z "$ri" ]; then
			bad="$bad $inc.h(unlisted)"
		elif [ "$ri" -gt "$r" ]; then
			bad="$bad $inc.h"
		fi
	done
	if [ -n "$bad" ]; then
		echo "not ok $n - $f includes headers above its layer:$bad"
		failed=1
	else
		echo "ok $n - $f"
	fi
done
exit $failed
