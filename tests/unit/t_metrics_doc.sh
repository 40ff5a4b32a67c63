#!/bin/sh
# Every metric in the table of docs/operations.md ("## Metrics", rows
# starting with | `pgpush_...` |) is in the exposition, with the type the
# table gives, and every metric of the exposition is in the table. TAP.
set -u
tool=${METRICS_EXPOSITION:-./tests/tools/metrics-exposition}
doc=${srcdir:-.}/docs/operations.md
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
t() { # t OK DESCRIPTION
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}
"$tool" >"$tmp/expo"
t $? "metrics-exposition ran"
# "# TYPE name type" -> "name type"
sed -n 's/^# TYPE \([^ ]*\) \([a-z]*\)$/\1 \2/p' "$tmp/expo" | sort >"$tmp/exposed"
# "| `name` | type | ..." within the Metrics section -> "name type"
awk '/^## /{ s = ($0 ~ /^## Metrics/) } s && /^\| `pgpush_/ {
	split($0, f, "|"); name = f[2]; type = f[3]
	gsub(/[` ]/, "", name); gsub(/ /, "", type); print name, type }' "$doc" | sort >"$tmp/documented"
[ -s "$tmp/documented" ]
t $? "docs/operations.md has a metrics table ($(wc -l <"$tmp/documented") rows)"
[ -s "$tmp/exposed" ]
t $? "the exposition has TYPE lines ($(wc -l <"$tmp/exposed") metrics)"
while read -r name type; do
	grep -qx "$name $type" "$tmp/exposed"
	t $? "documented $name ($type) is exposed with that type"
done <"$tmp/documented"
while read -r name type; do
	grep -qx "$name $type" "$tmp/documented"
	t $? "exposed $name ($type) is documented"
done <"$tmp/exposed"
# Every label the exposition uses is named in the table's row.
sed -n 's/^\(pgpush_[a-z_]*\){\([a-z_]*\)=.*/\1 \2/p' "$tmp/expo" | sed 's/_bucket / /' | sort -u |
	while read -r name label; do
		[ "$label" = le ] && continue
		grep -E "^\| \`$name\` \|" "$doc" | grep -q "\`$label\`"
		t $? "$name: label $label documented"
	done >"$tmp/labels"
cat "$tmp/labels"
grep -q '^not ok' "$tmp/labels" && failed=1
n=$((n + $(grep -c '^' "$tmp/labels")))
echo "1..$n"
exit $failed
