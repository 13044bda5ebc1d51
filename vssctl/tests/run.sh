#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the host test programs given as arguments, shows their TAP lines,
# and ends with the tally "N passed, M failed". A program that dies
# (a sanitizer report, a crash) or exits non-zero without a failed line
# counts as one more failure, so nothing can fail silently.
set -u

passed=0
failed=0
skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Sanitizer findings must fail the run, not only be printed.
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:halt_on_error=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

for test in "$@"; do
	name=$(basename "$test")
	echo "# $name"
	"$test" >"$log" 2>&1
	status=$?
	sed "s/^/    /" "$log"
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	s=$(grep -c '^ok .*# SKIP' "$log")
	passed=$((passed + p - s))
	skipped=$((skipped + s))
	failed=$((failed + f))
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $status"
		failed=$((failed + 1))
	fi
done

[ "$skipped" -gt 0 ] && echo "# $skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
