#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Run one libFuzzer binary for a while against a copy of its seed corpus;
# fail if it finds a crash, a leak or an invariant violation. Builds nothing.
#
#   run-fuzz.sh FUZZER CORPUS-DIR [SECONDS] [extra libFuzzer flags...]
#
# e.g. tests/fuzz/run-fuzz.sh build-fuzz/tests/fuzz/fuzz-region tests/fuzz/corpus/fuzz-region 30
#
# The corpus in the source tree is never written to. Inputs that fail are
# kept in $KVMNC_FUZZ_ARTIFACTS (default: a directory under /tmp, printed)
# as crash-*, leak-*, timeout-* or oom-*; minimize one with
#   FUZZER -minimize_crash=1 -runs=10000 crash-...
# and, once the bug is fixed, add it to the corpus as a regression input.
# With $KVMNC_FUZZ_CORPUS_OUT set, the grown corpus is copied there.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 FUZZER CORPUS-DIR [SECONDS] [libFuzzer flags...]" >&2
	exit 2
fi
fuzzer=$1
corpus=$2
seconds=${3:-30}
shift $(($# < 3 ? $# : 3))

[ -x "$fuzzer" ] || { echo "$fuzzer: not an executable (build with clang: see tests/fuzz/meson.build)" >&2; exit 2; }
[ -d "$corpus" ] || { echo "$corpus: not a directory" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kvmnc-fuzz.XXXXXX")
artifacts=${KVMNC_FUZZ_ARTIFACTS:-$work/artifacts}
mkdir -p "$work/corpus" "$artifacts"
cp -- "$corpus"/* "$work/corpus/" 2>/dev/null || true
name=$(basename "$fuzzer")

echo "$name: fuzzing for ${seconds}s from $(find "$work/corpus" -type f | wc -l) inputs; artifacts in $artifacts"
set +e
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
	-print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "$work/corpus" \
	>"$work/log" 2>&1
rc=$?
set -e

grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)' "$work/log" || true
grep -E '^#[0-9]+' "$work/log" | tail -n 1 || true
found=$(find "$artifacts" -type f -name '*-*' | head -n 20)
if [ $rc -ne 0 ] || [ -n "$found" ]; then
	echo "$name: FAILED (exit $rc)"
	tail -n 60 "$work/log"
	[ -n "$found" ] && echo "failing inputs:" && echo "$found"
	exit 1
fi
echo "$name: no crash in ${seconds}s; corpus grew to $(find "$work/corpus" -type f | wc -l) inputs"
if [ -n "${KVMNC_FUZZ_CORPUS_OUT:-}" ]; then
	mkdir -p "$KVMNC_FUZZ_CORPUS_OUT"
	cp -- "$work/corpus"/* "$KVMNC_FUZZ_CORPUS_OUT/"
	echo "grown corpus copied to $KVMNC_FUZZ_CORPUS_OUT"
fi
rm -rf "$work"
