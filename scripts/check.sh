#!/bin/bash
# make check: everything that must pass before a change lands.
#
#   0. its own: selftests/suites is well formed, and scripts/check-tap (the
#      TAP checker) passes its fixtures (scripts/check-tap-test)
#   1. host unit tests of vssctl/libvss, built with ASan and UBSan
#   2. build checks: vss.ko for each supported kernel with W=1, sparse,
#      checkpatch --strict; the userspace build with -Werror
#   3. the VM suites (selftests/suites) on each supported kernel; a suite
#      passes only if its TAP meets its plan and it skips nothing that
#      selftests/suites does not allow (scripts/check-tap)
#
# VSS_SUITES_FILE (default selftests/suites) is the list of suites;
# VSS_CHECK_KERNELS and VSS_CHECK_SUITES choose kernels and suites (names
# separated by spaces) for a partial run.
#
# Results (TAP, logs, guest kernel logs) go under results/. The last line
# is "N passed, M failed", summed over everything; the exit status is
# non-zero if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
results=$repo/results
cache=${VSS_CACHE:-$HOME/.cache/vss}
all_kernels="6.1 6.12 debug"
kernels=${VSS_CHECK_KERNELS:-6.1 6.12 debug}
only_suites=${VSS_CHECK_SUITES:-}
# make check-install gives selftests/suites-install.
suites_file=${VSS_SUITES_FILE:-selftests/suites}
rm -rf "$results"
mkdir -p "$results"

passed=0
failed=0
skipped=0
failures=()
skips=()

pass() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
fail() {
	failed=$((failed + 1))
	failures+=("$1")
	printf 'not ok - %s\n' "$1"
	[ -z "${2:-}" ] || sed 's/^/#   /' "$2" | tail -n 30
}

# count_tap FILE LABEL: adds a suite's TAP stream to the totals, through
# scripts/check-tap: a missing plan, a plan the results do not meet and a
# skip that selftests/suites does not allow are failures too.
count_tap() {
	local file=$1 label=$2 kind num rest reason
	local -a args=()
	local -A reasons=()
	while IFS=$'\t' read -r ere reason; do
		[ -n "$ere" ] || continue
		args+=(--skip-ok "$ere")
		reasons[$ere]=$reason
	done <<<"$(skip_rules "$label")"
	while read -r kind rest; do
		case $kind in
		pass) passed=$((passed + rest)) ;;
		skip)
			num=${rest%% *} rest=${rest#* }
			skipped=$((skipped + 1)) reason=
			for ere in "${!reasons[@]}"; do
				[[ $rest =~ $ere ]] && reason=${reasons[$ere]}
			done
			skips+=("$label $([ "$num" = 0 ] && echo "(the whole suite)" || echo "test $num"): $rest; allowed: $reason") ;;
		fail)
			failed=$((failed + 1))
			failures+=("$label: $rest") ;;
		*)
			failed=$((failed + 1))
			failures+=("$label: scripts/check-tap said '$kind $rest'") ;;
		esac
	done < <(scripts/check-tap "${args[@]}" "$file" 2>&1)
}

# selftests/suites (its top says the format): the suites, in order, and the
# skips each may have. A line that is neither is a failure.
suite_names=() suite_opts=() suite_cmds=()
declare -A suite_known=() skip_ok=()
suites_errors=()
read_suites() {
	local line name opts cmd nr=0 target k
	while IFS= read -r line || [ -n "$line" ]; do
		nr=$((nr + 1))
		case $line in ''|'#'*) continue ;; esac
		if [[ $line =~ ^skip-ok[[:space:]]+([^[:space:]/]+)[[:space:]]+/([^/]+)/[[:space:]]+([^[:space:]].*)$ ]]; then
			target=${BASH_REMATCH[1]}
			skip_ok[$target]+="${BASH_REMATCH[2]}"$'\t'"${BASH_REMATCH[3]}"$'\n'
			continue
		fi
		if [[ $line == skip-ok* ]]; then
			suites_errors+=("selftests/suites:$nr: expected 'skip-ok NAME[@KERNEL] /ERE/ REASON'")
			continue
		fi
		IFS='|' read -r name opts cmd <<<"$line"
		name=$(echo "$name" | xargs) opts=$(echo $opts) cmd=$(echo $cmd)
		if [ -z "$name" ] || [ -z "$cmd" ] || [[ $name == *[[:space:]]* ]]; then
			suites_errors+=("selftests/suites:$nr: expected 'NAME | VM-RUN OPTIONS | COMMAND'")
			continue
		fi
		for k in $(suite_option_kernels "$opts" | tr , ' '); do
			[[ " $all_kernels " == *" $k "* ]] ||
				suites_errors+=("selftests/suites:$nr: --kernels names '$k' (not one of $all_kernels)")
		done
		suite_names+=("$name") suite_opts+=("$opts") suite_cmds+=("$cmd")
		suite_known[$name]=1
	done <"$suites_file"
	for target in "${!skip_ok[@]}"; do
		[ -n "${suite_known[${target%@*}]:-}" ] ||
			suites_errors+=("selftests/suites: skip-ok names '$target', which is no suite")
		[[ $target != *@* || " $all_kernels " == *" ${target#*@} "* ]] ||
			suites_errors+=("selftests/suites: skip-ok names '$target': no kernel '${target#*@}' (one of $all_kernels)")
	done
}

# skip_rules KERNEL/NAME: the "ERE<tab>REASON" lines that apply to a suite
# on one kernel.
skip_rules() {
	local k=${1%%/*} name=${1#*/}
	printf '%s' "${skip_ok[$name]:-}" "${skip_ok[$name@$k]:-}"
}

# suite_option_kernels OPTIONS: the kernels "--kernels K,K" names, if any.
# suite_vm_options OPTIONS: the options without it, for scripts/vm-run.
suite_option_kernels() {
	set -- $1
	while [ $# -gt 0 ]; do
		case $1 in
		--kernels) echo "${2:-}"; return ;;
		--kernels=*) echo "${1#*=}"; return ;;
		esac
		shift
	done
}
suite_vm_options() {
	local -a rest=()
	set -- $1
	while [ $# -gt 0 ]; do
		case $1 in
		--kernels) shift 2 ;;
		--kernels=*) shift ;;
		*) rest+=("$1"); shift ;;
		esac
	done
	echo "${rest[*]}"
}

section() { printf '\n# %s\n' "$*"; }

bash scripts/deps.sh || { echo "deps: failed"; echo "0 passed, 1 failed"; exit 1; }
# The debug kernel builds in the background, niced: on a fresh machine its
# build (about 21 CPU-minutes) would otherwise come first and alone, while
# the VM suites of 6.1 and 6.12 leave one of the two cores idle much of the
# time. Its build checks and suites run last, once it is there.
debug_build_pid=
if [[ " $kernels " == *" debug "* ]]; then
	nice -n 19 bash scripts/deps.sh --debug-kernel >"$results/debug-kernel-build.log" 2>&1 &
	debug_build_pid=$!
fi

read_suites
section "the test runner's own checks"
if [ ${#suites_errors[@]} = 0 ]; then
	pass "selftests/suites is well formed (${#suite_names[@]} suites)"
else
	for e in "${suites_errors[@]}"; do fail "$e"; done
fi
scripts/check-tap-test >"$results/check-tap-test.tap" 2>&1
rc=$?
count_tap "$results/check-tap-test.tap" "host/check-tap-test"
[ $rc = 0 ] || fail "scripts/check-tap-test exits 0 (exit $rc; results/check-tap-test.tap)"

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

# The in-box writers' pure parts (mountinfo), under ASan and UBSan.
if make -s -C writers O="$repo/build" check >"$results/host-unit-writers.log" 2>&1; then
	pass "in-box writers host unit tests (writers/tests)"
else
	fail "in-box writers host unit tests (writers/tests)" "$results/host-unit-writers.log"
fi

# build_check KERNEL: vss.ko for it with W=1 and sparse, no warnings;
# then the plain module, as the VM suites load it.
build_check() {
	local k=$1 log=$results/build-$1.log
	. "$cache/kernels/$k.env"
	rm -f "build/$KVER/kmod/"*.o
	if make -s module KDIR="$KDIR" KVER="$KVER" KBUILD_FLAGS="W=1 C=2" >"$log" 2>&1 &&
		! grep -E 'warning:|error:' "$log" | grep -q .; then
		pass "vss.ko builds for $KVER with W=1 and sparse, no warnings"
	else
		fail "vss.ko builds for $KVER with W=1 and sparse, no warnings" "$log"
	fi
	make -s module KDIR="$KDIR" KVER="$KVER" >/dev/null 2>&1
}

section "build checks"
checkpatch=$cache/kernel-tools/scripts/checkpatch.pl
for k in $kernels; do
	[ "$k" = debug ] || build_check "$k"
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
# run_suites KERNEL...: every suite of the list on those kernels.
run_suites() {
	local i name opts cmd suite_kernels k dir tap t0 rc before
	for i in "${!suite_names[@]}"; do
		name=${suite_names[$i]} opts=${suite_opts[$i]} cmd=${suite_cmds[$i]}
		[ -z "$only_suites" ] || [[ " $only_suites " == *" $name "* ]] || continue
		suite_kernels=$(suite_option_kernels "$opts")
		opts=$(suite_vm_options "$opts")
		for k in "$@"; do
			[ -z "$suite_kernels" ] || [[ ",$suite_kernels," == *",$k,"* ]] || continue
			dir=$results/$k
			mkdir -p "$dir"
			tap=$dir/$name.tap
			t0=$SECONDS
			if [ "$opts" = --host ]; then
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
			124)
				failed=$((failed + 1))
				failures+=("$k/$name: timed out (see $dir/$name.stderr)") ;;
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
			printf '# %-28s %-5s exit %s, %d s\n' "$name" "$k" "$rc" $((SECONDS - t0))
		done
	done
}

section "VM suites"
t_suites=$SECONDS
run_suites $(for k in $kernels; do [ "$k" = debug ] || echo "$k"; done)
if [ -n "$debug_build_pid" ]; then
	section "the debug kernel"
	t_wait=$SECONDS
	if wait "$debug_build_pid"; then
		pass "the debug kernel is built (waited $((SECONDS - t_wait)) s for it after the other kernels' $((t_wait - t_suites)) s of suites)"
		build_check debug
		run_suites debug
	else
		fail "the debug kernel builds (scripts/deps.sh --debug-kernel)" "$results/debug-kernel-build.log"
	fi
fi

section "summary"
for f in "${skips[@]}"; do printf 'SKIPPED: %s\n' "$f"; done
for f in "${failures[@]}"; do printf 'FAILED: %s\n' "$f"; done
[ "$skipped" = 0 ] || echo "$skipped skipped (each allowed by selftests/suites)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
