#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The debug kernel's checkers, end to end: a test module (selftests/provoke)
# commits real bugs of each kind in a VM booted on the debug kernel, and
# scripts/vm-run must fail the run (exit 125) and name each report among the
# guest log lines it blames. A run that commits nothing must pass, kmemleak
# scans included: the harness itself reports nothing.
#
#   selftests/vss_debug_kernel_test.sh             two VMs: nothing, then
#                                                  every kind in one VM
#   selftests/vss_debug_kernel_test.sh --separate  one VM per kind
#
# Run on the host (it boots the VMs). TAP on stdout; the guest logs go to
# $VSS_RESULTS (default results/debug-kernel).
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${VSS_CACHE:-$HOME/.cache/vss}
kernel=${VSS_KERNEL:-debug}
out=${VSS_RESULTS:-$repo/results/debug-kernel}
env_file=$cache/kernels/$kernel.env
separate=
[ "${1:-}" != --separate ] || separate=1

if [ "$kernel" != debug ] || [ ! -r "$env_file" ]; then
	echo "1..0 # SKIP needs the debug kernel (VSS_KERNEL=debug; scripts/deps.sh --debug-kernel builds it)"
	exit 0
fi
KVER='' KDIR=''
# shellcheck source=/dev/null
. "$env_file"
rm -rf "$out"
mkdir -p "$out"

# The test module, built against the debug kernel next to vss.ko's build.
mod=$repo/build/$KVER/provoke
mkdir -p "$mod"
ln -sf "$repo/selftests/provoke/Kbuild" "$repo/selftests/provoke/vss_provoke.c" "$mod/"
if ! make -s -C "$KDIR" M="$mod" modules >"$out/build.log" 2>&1; then
	echo "Bail out! the test module does not build against $KVER (see $out/build.log)"
	exit 1
fi
ko=$mod/vss_provoke.ko

# shellcheck source=selftests/host_tap.sh
. "$repo/selftests/host_tap.sh"

# Each kind: what=KIND, the kernel's report in the guest log, and the line
# of it that vm-run must blame (scripts/check-kernel-log).
kinds=(lockdep kasan kfence kmemleak hung atomic-sleep list odebug-work odebug-timer)
declare -A report=(
	[lockdep]='WARNING: possible circular locking dependency detected'
	[kasan]='BUG: KASAN: slab-use-after-free in provoke_kasan'
	[kfence]='BUG: KFENCE: use-after-free read in provoke_kfence'
	[kmemleak]='(5a ){16} ZZZZZZZZZZZZZZZZ'	# its fill; the module is gone
	[hung]='INFO: task provoke_hung:[0-9]+ blocked for more than 2 seconds'
	[atomic-sleep]='BUG: sleeping function called from invalid context'
	[list]='list_add double add'
	[odebug-work]='provoke_odebug_work'
	[odebug-timer]='provoke_odebug_timer'
)
declare -A blamed=(
	[lockdep]='possible circular locking dependency'
	[kasan]='BUG: KASAN: slab-use-after-free'
	[kfence]='BUG: KFENCE: use-after-free read'
	[kmemleak]='unreferenced object 0x[0-9a-f]+ \(size 256\)'
	[hung]='INFO: task provoke_hung:[0-9]+ blocked for more than'
	[atomic-sleep]='BUG: sleeping function called from invalid context'
	[list]='WARNING: CPU: [0-9]+ PID: [0-9]+ at lib/list_debug.c'
	[odebug-work]='WARNING: CPU: [0-9]+ PID: [0-9]+ at lib/debugobjects.c'
	[odebug-timer]='WARNING: CPU: [0-9]+ PID: [0-9]+ at lib/debugobjects.c'
)
# The shell that commits KIND: the hung thread sleeps 8 s with a 2 s limit,
# and unloading the module waits for it.
commit() {
	case $1 in
	hung) echo "sysctl -qw kernel.hung_task_timeout_secs=2; insmod $ko what=hung hung_s=8; sleep 1; rmmod vss_provoke" ;;
	*) echo "insmod $ko what=$1; rmmod vss_provoke" ;;
	esac
}

# check KIND NAME RC: the verdict of the run whose files are $out/NAME.*.
check() {
	local kind=$1 name=$2 rc=$3 why=
	if [ "$rc" != 125 ]; then
		why="vm-run exit $rc, want 125"
	elif ! grep -qE -- "${report[$kind]}" "$out/$name.dmesg"; then
		why="no /${report[$kind]}/ in $out/$name.dmesg"
	elif ! grep -E -- "${blamed[$kind]}" "$out/$name.err" | grep -q '^  '; then
		why="vm-run did not blame /${blamed[$kind]}/ ($out/$name.err)"
	fi
	if [ -z "$why" ]; then
		tap ok "$kind: the kernel reports it and vm-run fails the run for it"
	else
		tap fail "$kind: the kernel reports it and vm-run fails the run for it" "$why"
	fi
}

vm() { # vm NAME SHELL: one VM on the debug kernel
	"$repo/scripts/vm-run" --quiet --kernel debug --no-module --log "$out/$1.dmesg" -- \
		bash -c "$2" >"$out/$1.out" 2>"$out/$1.err"
}

echo "TAP version 13"
echo "1..$((1 + ${#kinds[@]}))"

vm nothing "insmod $ko what=nothing && rmmod vss_provoke"
rc=$?
if [ $rc = 0 ] && grep -q 'vm-init: kmemleak: scanned twice' "$out/nothing.dmesg"; then
	tap ok "a run that commits no bug passes, kmemleak scanned at its end"
else
	tap fail "a run that commits no bug passes, kmemleak scanned at its end" \
		"vm-run exit $rc, want 0: $(head -c 1500 "$out/nothing.err")"
fi

if [ -n "$separate" ]; then
	for kind in "${kinds[@]}"; do
		vm "$kind" "$(commit "$kind")"
		check "$kind" "$kind" $?
	done
else
	script=
	for kind in "${kinds[@]}"; do script+="$(commit "$kind"); "; done
	vm all "$script"
	rc=$?
	for kind in "${kinds[@]}"; do check "$kind" all $rc; done
fi

exit $((failed > 0))
