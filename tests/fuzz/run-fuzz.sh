#!/bin/sh
# run-fuzz.sh: build the libFuzzer targets of tests/fuzz and run each one.
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [TARGET...]     fuzz each TARGET for SECONDS
#   tests/fuzz/run-fuzz.sh --merge [TARGET...]       minimize a corpus for commit
#   tests/fuzz/run-fuzz.sh --build [TARGET...]       only build
#
# SECONDS defaults to 600; TARGET to all of: http eio sio ws_handshake
# files_path jwt pgoutput jsonpatch jsonpatch_apply cidr. Targets run one after the other; to use two
# cores, start two
# runs with different targets (they share the build directory, so build
# first with --build). Run it under nice on a shared machine:
#   nice -n 10 tests/fuzz/run-fuzz.sh 600 http eio
#
# Needs clang with libFuzzer and the sanitizer runtimes (Debian: clang and
# libclang-rt-14-dev; installed with apt-get when missing and run as root),
# pkg-config, and the headers of json-c and OpenSSL. The targets link only
# the decoder modules of src/ (buf cidr claims config eio files http jose
# jsonpatch jsontext jsonvalue jwt log pgoutput sio util ws),
# so libev, wslay and libpq are not needed, nor is ./configure: the sources
# include "autoconfig.h", and all these modules need from it is _GNU_SOURCE
# and PACKAGE_VERSION, so a minimal one is written into the build directory
# (AUTOCONFIG_DIR=dir uses the autoconfig.h of a configured tree instead).
#
# Everything is written below FUZZ_DIR (default: build-fuzz/ at the top of
# the tree, which ignores itself in git):
#   bin/fuzz_<target>            the instrumented binaries
#   work/<target>/corpus/        a working copy of tests/fuzz/corpus/<target>,
#                                growing as the fuzzer finds new coverage
#   work/<target>/crashes/       crash-*, leak-*, timeout-*, oom-* inputs
#   work/<target>/fuzz.log       libFuzzer's output
#   min/<target>/                --merge output: the committed seeds plus the
#                                working-corpus inputs that add coverage
# A crash stops its target (libFuzzer's default); the script reports it
# with the command that reproduces it and exits 1.
#
# Environment: CC (default clang), FUZZ_DIR, AUTOCONFIG_DIR, FUZZ_ARGS
# (more libFuzzer flags, e.g. "-max_len=8192 -use_value_profile=1").
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
fuzzsrc=$top/tests/fuzz
all_targets="http eio sio ws_handshake files_path jwt pgoutput jsonpatch jsonpatch_apply cidr"
modules="authority buf cidr claims conffile config eio files http jose jsonpatch jsontext jsonvalue jwt log pgoutput sio util ws"

mode=run
seconds=600
case ${1:-} in
--merge) mode=merge; shift ;;
--build) mode=build; shift ;;
''|*[!0-9]*) ;;
*) seconds=$1; shift ;;
esac
targets=${*:-$all_targets}
for t in $targets; do
	case " $all_targets " in
	*" $t "*) ;;
	*) echo "run-fuzz.sh: unknown target '$t' (targets: $all_targets)" >&2; exit 2 ;;
	esac
done

CC=${CC:-clang}
FUZZ_DIR=${FUZZ_DIR:-$top/build-fuzz}
FUZZ_ARGS=${FUZZ_ARGS:-}

# --- toolchain -----------------------------------------------------------
have_libfuzzer() {
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' \
		> "$FUZZ_DIR/probe.c"
	"$CC" -fsanitize=fuzzer,address,undefined "$FUZZ_DIR/probe.c" \
		-o "$FUZZ_DIR/probe" >/dev/null 2>&1
}
mkdir -p "$FUZZ_DIR"
[ -f "$FUZZ_DIR/.gitignore" ] || echo '*' > "$FUZZ_DIR/.gitignore"
if ! have_libfuzzer; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "run-fuzz.sh: installing clang and libclang-rt-14-dev" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y clang libclang-rt-14-dev >&2
	fi
	if ! have_libfuzzer; then
		echo "run-fuzz.sh: $CC cannot build libFuzzer targets" \
		     "(Debian: apt-get install clang libclang-rt-14-dev)" >&2
		exit 2
	fi
fi

# --- build -----------------------------------------------------------------
if [ -n "${AUTOCONFIG_DIR:-}" ]; then
	confdir=$AUTOCONFIG_DIR
else
	confdir=$FUZZ_DIR/include
	mkdir -p "$confdir"
	version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$top/configure.ac")
	cat > "$confdir/autoconfig.h.tmp.$$" <<EOF
/* Minimal autoconfig.h for the fuzz build (written by tests/fuzz/run-fuzz.sh). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#define PACKAGE_VERSION "${version:-0}"
EOF
	if cmp -s "$confdir/autoconfig.h.tmp.$$" "$confdir/autoconfig.h"; then
		rm -f "$confdir/autoconfig.h.tmp.$$"
	else
		mv "$confdir/autoconfig.h.tmp.$$" "$confdir/autoconfig.h"
	fi
fi

deps_cflags=$(pkg-config --cflags json-c libcrypto)
deps_libs=$(pkg-config --libs json-c libcrypto)
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cflags="-g -O1 $san -I$confdir -I$top/src -I$fuzzsrc -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare $deps_cflags"

# Rebuilds when a source or header is newer than the binary.
stale() { # binary sources...
	out=$1; shift
	[ -f "$out" ] || return 0
	for f in "$@" "$top"/src/*.h "$fuzzsrc/fuzz.h" "$confdir/autoconfig.h"; do
		[ "$f" -nt "$out" ] && return 0
	done
	return 1
}

build() {
	t=$1
	bin=$FUZZ_DIR/bin/fuzz_$t
	objdir=$FUZZ_DIR/obj
	mkdir -p "$FUZZ_DIR/bin" "$objdir"
	objs=
	for m in $modules; do
		o=$objdir/$m.o
		if stale "$o" "$top/src/$m.c"; then
			$CC $cflags -fsanitize=fuzzer-no-link -c "$top/src/$m.c" -o "$o.tmp.$$"
			mv "$o.tmp.$$" "$o"
		fi
		objs="$objs $o"
	done
	if stale "$bin" "$fuzzsrc/fuzz_$t.c" $objs; then
		echo "build: $bin" >&2
		$CC $cflags -fsanitize=fuzzer "$fuzzsrc/fuzz_$t.c" $objs $deps_libs \
			-o "$bin.tmp.$$"
		mv "$bin.tmp.$$" "$bin"
	fi
}

for t in $targets; do
	build "$t"
done
[ "$mode" = build ] && exit 0

# --- merge -----------------------------------------------------------------
if [ "$mode" = merge ]; then
	for t in $targets; do
		seeds=$fuzzsrc/corpus/$t
		work=$FUZZ_DIR/work/$t/corpus
		out=$FUZZ_DIR/min/$t
		rm -rf "$out"
		mkdir -p "$out"
		# Start from the committed corpus, so hand-written seeds and
		# crashers keep their names; add what the work corpus covers more.
		[ -d "$seeds" ] && cp -p "$seeds"/* "$out"/ 2>/dev/null || :
		[ -d "$work" ] || mkdir -p "$work"
		"$FUZZ_DIR/bin/fuzz_$t" -merge=1 $FUZZ_ARGS "$out" "$work" \
			> "$FUZZ_DIR/work/$t/merge.log" 2>&1 || {
			echo "merge of $t failed: see $FUZZ_DIR/work/$t/merge.log" >&2
			exit 1
		}
		printf '%-14s %4d files %8d bytes  %s\n' "$t" \
			"$(find "$out" -type f | wc -l)" \
			"$(find "$out" -type f -exec cat {} + | wc -c)" "$out"
	done
	echo "review, then copy into tests/fuzz/corpus/<target>/ and git add" >&2
	exit 0
fi

# --- run -------------------------------------------------------------------
stat_of() { # log key
	sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}
status=0
summary=$FUZZ_DIR/summary.txt
: > "$summary.$$"
for t in $targets; do
	wd=$FUZZ_DIR/work/$t
	mkdir -p "$wd/corpus" "$wd/crashes"
	[ -d "$fuzzsrc/corpus/$t" ] && cp -p "$fuzzsrc/corpus/$t"/* "$wd/corpus"/ 2>/dev/null || :
	dict=
	[ -f "$fuzzsrc/$t.dict" ] && dict="-dict=$fuzzsrc/$t.dict"
	before=$(ls "$wd/crashes" | wc -l)
	cmd="$FUZZ_DIR/bin/fuzz_$t -max_total_time=$seconds -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix=$wd/crashes/ $dict $FUZZ_ARGS $wd/corpus"
	echo "run: $cmd" >&2
	start=$(date +%s)
	rc=0
	$cmd > "$wd/fuzz.log" 2>&1 || rc=$?
	elapsed=$(( $(date +%s) - start ))
	execs=$(stat_of "$wd/fuzz.log" number_of_executed_units)
	eps=$(stat_of "$wd/fuzz.log" average_exec_per_sec)
	last=$(grep -E '^#[0-9]+' "$wd/fuzz.log" | grep 'cov:' | tail -n 1)
	cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
	new_crashes=$(( $(ls "$wd/crashes" | wc -l) - before ))
	printf '%-14s %6ss %12s execs %8s exec/s  cov %6s  ft %7s  corp %-12s crashes %s\n' \
		"$t" "$elapsed" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
		"$new_crashes" | tee -a "$summary.$$"
	if [ "$rc" -ne 0 ] || [ "$new_crashes" -gt 0 ]; then
		status=1
		echo "  $t: libFuzzer exit $rc; last lines of $wd/fuzz.log:" >&2
		tail -n 30 "$wd/fuzz.log" | sed 's/^/    /' >&2
		for c in $(ls -t "$wd/crashes" | head -n "$(( new_crashes > 0 ? new_crashes : 1 ))"); do
			echo "  reproduce: $FUZZ_DIR/bin/fuzz_$t $wd/crashes/$c" >&2
			echo "  input (hex): $(od -An -tx1 -v "$wd/crashes/$c" | tr -d ' \n' | cut -c1-400)" >&2
		done
	fi
done
echo "--- summary (also in $summary) ---"
cat "$summary.$$"
cat "$summary.$$" >> "$summary"
rm -f "$summary.$$"
exit $status
