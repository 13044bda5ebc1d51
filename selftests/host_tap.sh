# shellcheck shell=bash
# TAP for the tests that run on the host and boot VMs themselves (the
# reboot, install and debug-kernel tests), sourced by each once it has set
# repo, kernel and out (its results folder). Sets n and failed, the counts.

n=0
failed=0

tap() { # tap ok|fail NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		failed=$((failed + 1))
		[ -z "${3:-}" ] || printf '# %s\n' "$3"
	fi
}

# boot_on N PRELUDE SCRIPT VM-RUN-OPTIONS...: runs PRELUDE then SCRIPT
# (bash, set -u) in a VM on $kernel, with STATE naming $out/state, where
# the guest keeps what must outlive a crash (the checkout is shared, 9p).
# Its stdout, stderr and kernel log go to $out/bootN.{out,err,dmesg}; its
# exit status is returned and kept in $out/bootN.rc.
boot_on() {
	local nr=$1 prelude=$2 script=$3 rc
	shift 3
	"$repo/scripts/vm-run" --quiet --kernel "$kernel" "$@" --log "$out/boot$nr.dmesg" -- \
		env STATE="$out/state" bash -c "set -u; $prelude; $script" \
		>"$out/boot$nr.out" 2>"$out/boot$nr.err"
	rc=$?
	echo "$rc" >"$out/boot$nr.rc"
	return $rc
}

# value FILE KEY: the value of FILE's last line "KEY=VALUE".
value() { sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -n1; }
