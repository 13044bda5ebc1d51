#!/bin/bash
# make check: everything that must pass before a change lands.
#
#   1. host unit tests of vssctl/libvss, built with ASan and UBSan
#   2. build checks: vss.ko for each supported kernel with W=1, sparse,
#      checkpatch --strict; the userspace build with -Werror
#   3. the VM suites (selftests/suites) on each supported kernel
#
# Results (TAP, logs, guest kernel logs) go under results/. The last line
# is "N passed, M failed", summed over everything; the exit status is
# non-zero if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
results=$repo/results
cache=${VSS_CACHE:-$HOME/.cache/vss}
kernels=${VSS_CHECK_KERNELS:-6.1 6.12}
rm -rf "$results"
mkdir -p "$results"

passed=0
failed=0
skipped=0
failures=()

pass() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
fail() {
	failed=$((failed + 1))
	failures+=("$1")
	printf 'not ok - %s\n' "$1"
	[ -z "${2:-}" ] || sed 's/^/#   /' "$2" | tail -n 30
}

# Adds the counts of a TAP stream (kselftest or ours) to the totals.
count_tap() {
	local file=$1 prefix=$2 line name
	while IFS= read -r line; do
		case "$line" in
		"ok "*"# SKIP"*)
			skipped=$((skipped + 1)) ;;
		"ok "*)
			passed=$((passed + 1)) ;;
		"not ok "*)
			name=${line#not ok }
			failed=$((failed + 1))
			failures+=("$prefix: $name") ;;
		esac
	done <"$file"
}

section() { printf '\n# %s\n' "$*"; }

bash scripts/deps.sh || { echo "deps: failed"; echo "0 passed, 1 failed"; exit 1; }

section "host unit tests (ASan, UBSan)"
if make -s -C vssctl O="$repo/build" SANITIZE=1 check >"$results/host-unit.log" 2>&1; then
	:
fi
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$results/host-unit.log" | tail -n1)
if [ -n "$summary" ]; then
	read -r p _ f _ <<<"$summary"
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" = 0 ] || failures+=("host unit tests: $f failed (results/host-unit.log)")
	echo "# host unit tests: $summary"
else
	fail "host unit tests ran" "$results/host-unit.log"
fi

# vsswriterd and libvsswriter (their own build, run after libvss's).
if make -s -C vsswriterd O="$repo/build" check >"$results/host-unit-writerd.log" 2>&1; then
	:
fi
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$results/host-unit-writerd.log" | tail -n1)
if [ -n "$summary" ]; then
	read -r p _ f _ <<<"$summary"
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" = 0 ] || failures+=("vsswriterd host unit tests: $f failed (results/host-unit-writerd.log)")
	echo "# vsswriterd host unit tests: $summary"
else
	fail "vsswriterd host unit tests ran" "$results/host-unit-writerd.log"
fi

section "build checks"
checkpatch=$cache/kernel-tools/scripts/checkpatch.pl
for k in $kernels; do
	. "$cache/kernels/$k.env"
	log=$results/build-$k.log
	rm -f "build/$KVER/kmod/"*.o
	if make -s module KDIR="$KDIR" KVER="$KVER" KBUILD_FLAGS="W=1 C=2" >"$log" 2>&1 &&
		! grep -E 'warning:|error:' "$log" | grep -q .; then
		pass "vss.ko builds for $KVER with W=1 and sparse, no warnings"
	else
		fail "vss.ko builds for $KVER with W=1 and sparse, no warnings" "$log"
	fi
done
log=$results/checkpatch.log
# The compat header compares kernel versions: that is its whole purpose.
if perl "$checkpatch" --strict --no-tree --terse --show-types -f \
		$(ls kmod/*.[ch] uapi/linux/vss.h | grep -v compat.h) >"$log" 2>&1 &&
	perl "$checkpatch" --strict --no-tree --terse \
		--ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON -f kmod/compat.h >>"$log" 2>&1 &&
	! grep -qE '(ERROR|WARNING|CHECK):' "$log"; then
	pass "checkpatch --strict is clean for kmod/ and uapi/"
else
	fail "checkpatch --strict is clean for kmod/ and uapi/" "$log"
fi
log=$results/tools-build.log
if make -s tools >"$log" 2>&1 && make -s -C selftests O="$repo/build" >>"$log" 2>&1; then
	pass "vssctl, libvss, vsswriterd, libvsswriter and the selftests build with -Werror"
else
	fail "vssctl, libvss, vsswriterd, libvsswriter and the selftests build with -Werror" "$log"
fi
# Modules for every kernel, as the VM suites load them.
for k in $kernels; do
	. "$cache/kernels/$k.env"
	make -s module KDIR="$KDIR" KVER="$KVER" >/dev/null 2>&1
done

section "VM suites"
# selftests/suites: one suite a line, "NAME | VM-RUN OPTIONS | COMMAND";
# the options "--host" run COMMAND on the host, where it boots VMs itself.
while IFS='|' read -r name opts cmd; do
	name=$(echo "$name" | xargs)
	case "$name" in ''|'#'*) continue ;; esac
	for k in $kernels; do
		dir=$results/$k
		mkdir -p "$dir"
		tap=$dir/$name.tap
		if [ "$(echo $opts)" = --host ]; then
			# A test that boots VMs itself (several boots on one disk).
			VSS_KERNEL=$k VSS_RESULTS=$dir/$name $cmd >"$tap" 2>"$dir/$name.stderr"
		else
			# shellcheck disable=SC2086
			scripts/vm-run --quiet --kernel "$k" $opts --log "$dir/$name.dmesg" \
				-- $cmd >"$tap" 2>"$dir/$name.stderr"
		fi
		rc=$?
		before=$failed
		count_tap "$tap" "$k/$name"
		case $rc in
		0) ;;
		125)
			failed=$((failed + 1))
			failures+=("$k/$name: guest kernel log or harness (see $dir/$name.stderr)")
			sed 's/^/#   /' "$dir/$name.stderr" | tail -n 20 ;;
		*)
			if [ "$failed" = "$before" ]; then
				failed=$((failed + 1))
				failures+=("$k/$name: exit status $rc with no failing test")
			fi ;;
		esac
		printf '# %-28s %-5s exit %s\n' "$name" "$k" "$rc"
	done
done <selftests/suites

section "summary"
for f in "${failures[@]}"; do printf 'FAILED: %s\n' "$f"; done
[ "$skipped" = 0 ] || echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
