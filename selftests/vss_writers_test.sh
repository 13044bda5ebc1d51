#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vsswriterd end to end, in the VM, with the real daemon, real writer
# processes (vss_test_writer on libvsswriter), real hooks, real requesters
# (vssctl and vss_test_requester on libvss) and the real module:
#   - the whole sequence with several writers and their order, and an
#     application-consistent image (the writer's data ends where it froze)
#   - vetoes at freeze and at prepare-snapshot; a failed writer is stable
#     again after the next good sequence, without a restart
#   - a writer that hangs in freeze
#   - SIGKILL of the requester, of vsswriterd and of a writer at each step:
#     afterwards no filesystem and no writer is frozen, no snapshot of an
#     aborted set remains, and the next backup succeeds
#   - two requesters at once; an unchanged qemu-ga hook directory;
#     non-root requesters and writers from the wrong uid; malformed
#     messages; the events in vssctl monitor; socket activation
#     (systemd-socket-activate) and sd_notify READY
#
# Disks: 0: the applications' filesystem (ext4, in every set)
#        1: a second filesystem (a hook freezes it with fsfreeze)
# Storage is a directory on /tmp (tmpfs).
set -u

repo=${VSS_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
export PATH=$repo/build/bin:$repo/build/selftests:$PATH
read -r -a disks <<<"${VSS_DISKS:-}"
# shellcheck source=selftests/tap.sh
. "$repo/selftests/tap.sh"

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (it starts vsswriterd)"
	exit 0
fi
if [ ${#disks[@]} -lt 2 ]; then
	echo "1..0 # SKIP needs two scratch disks"
	exit 0
fi
d0=${disks[0]} d1=${disks[1]}
T=$(mktemp -d /tmp/writers.XXXXXX)
chmod 755 "$T"	# the unprivileged cases reach into it
m0=$T/m0 m1=$T/m1 store=$T/store
mkdir -p "$m0" "$m1" "$store" "$T/hooks" "$T/qga"
mkfs.ext4 -q -F "$d0" && mount "$d0" "$m0" || { echo "1..0 # SKIP cannot mount $d0"; exit 0; }
mkfs.ext4 -q -F "$d1" && mount "$d1" "$m1"
conf=$T/vsswriterd.conf
daemon_log=$T/daemon.log
hooklog=$T/hook.log
wpids=()

ms_now() { echo $(($(date +%s%N) / 1000000)); }
t_suite=$(ms_now)
# Where the time goes, on stderr.
section() { echo "writers: $(($(ms_now) - t_suite)) ms: $*" >&2; }

# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
	local end=$(($(ms_now) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(ms_now)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

write_config() {
	cat >"$conf" <<EOF
[vsswriterd]
requester-group = 4242
hook-dir = $T/hooks
qemu-ga-hook-dir = $T/qga
hook-timeout = 5s
step-timeout = ${STEP_TIMEOUT:-4s}
[writer pg]
user = 1234
[hook 20-fsfreeze]
class = front-end
EOF
}

daemon_pid=
start_daemon() {
	write_config
	vsswriterd --foreground --debug -c "$conf" "$@" >>"$daemon_log" 2>&1 &
	daemon_pid=$!
	echo "$daemon_pid" >"$T/daemon.pid"
	wait_for 10 test -S /run/vss/writerd.sock
	wait_for 10 vssctl writers >/dev/null 2>&1
}

stop_daemon() {
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill "$daemon_pid"
		wait "$daemon_pid" 2>/dev/null
	fi
	daemon_pid=
}

daemon_gone() { ! kill -0 "$daemon_pid" 2>/dev/null; }

# start_writer NAME LOG ARGS...: a writer process, registered when this returns.
start_writer() {
	local name=$1 log=$2
	shift 2
	rm -f "$T/$name.ready"
	vss_test_writer --name "$name" --log "$log" --ready "$T/$name.ready" --reconnect 200 "$@" 2>>"$T/$name.err" &
	wpids+=($!)
	eval "pid_$(echo "$name" | tr -c 'a-z0-9\n' _)=$!"
	wait_for 10 test -e "$T/$name.ready"
}

stop_writers() {
	local p
	for p in "${wpids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${wpids[@]}"; do wait "$p" 2>/dev/null; done
	wpids=()
}

sets() { vssctl --json list 2>/dev/null | jq '[.[].set_id] | unique | length'; }
clean_sets() { vssctl delete --all >/dev/null 2>&1; }

# Neither filesystem is frozen: FIFREEZE on a frozen one fails with EBUSY.
# (A write would block, unkillable, for as long as it stays frozen.)
fs_thawed() { fsfreeze -f "$1" 2>/dev/null && fsfreeze -u "$1"; }
no_fs_frozen() { fs_thawed "$m0" && fs_thawed "$m1"; }
no_sets() { [ "$(sets)" = 0 ]; }

# A writer's log: every "frozen" is followed by a thaw or an abort.
not_frozen_log() {
	awk '$2 == "frozen" { f = 1 } $2 == "thaw" || $2 == "abort" { f = 0 } END { exit f }' "$1"
}

requester() { vss_test_requester --storage "$store" --limit 32M --volume "$d0" "$@"; }

hook_script() { # NAME: a native hook that logs its steps
	cat >"$T/hooks/$1" <<EOF
#!/bin/sh
echo "\$(date +%s%N) $1 \$1" >> $hooklog
exit 0
EOF
	chmod 755 "$T/hooks/$1"
}

cleanup() {
	stop_writers
	stop_daemon
	clean_sets
	fsfreeze -u "$m1" 2>/dev/null
	umount "$m0" "$m1" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT


# --- without vsswriterd ---------------------------------------------------------
vssctl create --storage "$store" --storage-limit 32M "$d0" >"$out" 2>"$err"
rc=$?
if [ $rc = 0 ] && grep -q "no writers were asked" "$err"; then
	tap OK "without vsswriterd, create works and says that no writers were asked"
else
	tap FAIL "without vsswriterd, create works and says that no writers were asked" "rc $rc"
fi
clean_sets
expect_error 12 'vsswriterd is not running' "vssctl writers without vsswriterd: exit 12" vssctl writers

# --- the whole sequence ------------------------------------------------------------
section "sequence"
hook_script 10-log
cat >"$T/hooks/20-fsfreeze" <<EOF
#!/bin/sh
# A hook that really freezes a filesystem, as some admins' hooks do.
echo "\$(date +%s%N) 20-fsfreeze \$1" >> $hooklog
case "\$1" in
freeze) fsfreeze -f $m1 ;;
thaw|abort) fsfreeze -u $m1 2>/dev/null || true ;;
esac
exit 0
EOF
chmod 755 "$T/hooks/20-fsfreeze"
printf '#!/bin/sh\necho sample >> %s\n' "$hooklog" >"$T/hooks/30-off.sample"
printf '#!/bin/sh\necho dpkg >> %s\n' "$hooklog" >"$T/hooks/40-x.dpkg-old"
chmod 755 "$T/hooks/30-off.sample" "$T/hooks/40-x.dpkg-old"
start_daemon
start_writer web "$T/web.log" --class front-end --path "$m0"
start_writer db "$T/db.log" --class back-end --path "$m0" --data "$m0/db.data"
start_writer sys "$T/sys.log" --class system
sleep 0.3	# the application writes a little first
vssctl --json writers >"$out" 2>"$err"
if jq -e 'length == 5 and ([.[].name] | sort == ["10-log","20-fsfreeze","db","sys","web"]) and
	(.[] | select(.name == "db") | .instance_id != "" and .class == "back-end" and
	 .state == 1 and (.components[0].volumes | length) == 1)' "$out" >/dev/null; then
	tap OK "vssctl writers lists processes and hooks (not *.sample, *.dpkg-*) with ids, state and components"
else
	tap FAIL "vssctl writers lists processes and hooks (not *.sample, *.dpkg-*) with ids, state and components" "$(head -c 400 "$out")"
fi
: >"$hooklog"
vssctl --json create --storage "$store" --storage-limit 32M "$d0" >"$out" 2>"$err"
rc=$?
set1=$(jq -r '.set_id' "$out" 2>/dev/null)
if [ $rc = 0 ] && jq -e '.writers_asked and (.writers | length) == 5 and
	all(.writers[]; .state_name == "waiting-for-backup-complete")' "$out" >/dev/null; then
	tap OK "create goes through vsswriterd; all five writers took part"
else
	tap FAIL "create goes through vsswriterd; all five writers took part" "rc $rc $(head -c 300 "$out") $(cat "$err")"
fi
vssctl create --storage "$store" --storage-limit 32M "$d0" >"$out" 2>"$err" && grep -q "writers: 5 took part" "$out" &&
	tap OK "the text output says which writers took part" || tap FAIL "the text output says which writers took part"
clean_sets
ev() { awk -v e="$2" '$2 == e { print $1; exit }' "$1"; }
hv() { awk -v h="$1" -v s="$2" '$2 == h && $3 == s { print $1; exit }' "$hooklog"; }
if [ -n "$(ev "$T/web.log" freeze)" ] &&
	[ "$(ev "$T/web.log" freeze)" -lt "$(ev "$T/db.log" freeze)" ] &&
	[ "$(ev "$T/db.log" freeze)" -lt "$(ev "$T/sys.log" freeze)" ] &&
	[ "$(hv 10-log freeze)" -lt "$(ev "$T/sys.log" freeze)" ] &&
	[ "$(ev "$T/web.log" freeze)" -lt "$(hv 10-log freeze)" ]; then
	tap OK "freeze order: front-end, back-end (db and the hook), system"
else
	tap FAIL "freeze order: front-end, back-end (db and the hook), system"
fi
if [ "$(ev "$T/sys.log" thaw)" -lt "$(ev "$T/db.log" thaw)" ] &&
	[ "$(ev "$T/db.log" thaw)" -lt "$(ev "$T/web.log" thaw)" ] &&
	[ "$(ev "$T/sys.log" freeze)" -lt "$(ev "$T/web.log" thaw)" ]; then
	tap OK "thaw order: system, back-end, front-end, after every freeze"
else
	tap FAIL "thaw order: system, back-end, front-end, after every freeze"
fi
order=$(awk '$2 ~ /^(identify|prepare-backup|prepare-snapshot|freeze|thaw|post-snapshot)$/ { printf "%s ", $2 }' "$T/db.log" | head -c 200)
case "$order" in
"identify prepare-backup prepare-snapshot freeze thaw post-snapshot "*) tap OK "a writer gets identify .. post-snapshot in order" ;;
*) tap FAIL "a writer gets identify .. post-snapshot in order" "$order" ;;
esac
grep -q "10-log prepare-backup" "$hooklog" && grep -q "10-log post-snapshot" "$hooklog" &&
	! grep -q "sample\|dpkg" "$hooklog" && tap OK "hooks get every step as argv[1]" ||
	tap FAIL "hooks get every step as argv[1]" "$(cat "$hooklog")"
# The hook children of freeze and thaw were forked before the sequence's
# other steps ran: they were waiting, and the daemon never exec'd while frozen.
pf=$(sed -n 's/.*hook 10-log: freeze (pid \([0-9]*\)).*/\1/p' "$daemon_log" | head -n1)
pp=$(sed -n 's/.*hook 10-log: prepare-snapshot (pid \([0-9]*\)).*/\1/p' "$daemon_log" | head -n1)
[ -n "$pf" ] && [ -n "$pp" ] && [ "$pf" -lt "$pp" ] &&
	tap OK "the freeze hook was forked before prepare-snapshot ran (preforked, fexecve'd later)" ||
	tap FAIL "the freeze hook was forked before prepare-snapshot ran (preforked, fexecve'd later)" "freeze $pf, prepare $pp"
# The image holds the application's data exactly as it stopped at freeze.
seq=$(awk '$2 == "data-stopped" { sub("seq=", "", $3); print $3; exit }' "$T/db.log")
vssctl --json create --storage "$store" --storage-limit 32M "$d0" >"$out" 2>"$err"
seq2=$(awk '$2 == "data-stopped" { sub("seq=", "", $3); s = $3 } END { print s }' "$T/db.log")
image=$(jq -r '.snapshots[0].image.path' "$out")
mkdir -p "$T/img"
if mount -o ro,noload "$image" "$T/img" 2>/dev/null; then
	last=$(tail -n1 "$T/img/db.data")
	umount "$T/img"
fi
sleep 0.2
now=$(tail -n1 "$m0/db.data")
if [ -n "$seq" ] && [ "${last:-}" = "line $seq2" ] && [ "$now" != "line $seq2" ]; then
	tap OK "the image ends exactly where the application froze (line $seq2); the origin went on"
else
	tap FAIL "the image ends exactly where the application froze" "image '${last:-}', froze at $seq2, now '$now'"
fi
set2=$(jq -r '.set_id' "$out")
expect 0 "vssctl backup-complete SET" vssctl backup-complete "${set2:0:8}"
wait_for 5 grep -q "backup-complete.*success=1" "$T/db.log" &&
	tap OK "the writers get backup-complete with success" || tap FAIL "the writers get backup-complete with success"
vssctl --json writers >"$out"
jq -e 'all(.[]; .state == 1)' "$out" >/dev/null && tap OK "then every writer is stable" ||
	tap FAIL "then every writer is stable" "$(jq -c '[.[] | [.name, .state]]' "$out")"
expect_error 5 'no set|no such' "backup-complete of a completed set: not found" vssctl backup-complete "$set2"
clean_sets

# --- monitor ---------------------------------------------------------------------
section "monitor"
vssctl monitor --json --timeout 20 >"$T/monitor.json" 2>/dev/null &
mon=$!
sleep 0.5
requester --end complete >"$out"
sleep 0.5
kill $mon 2>/dev/null; wait $mon 2>/dev/null
if jq -se 'any(.[]; .source == "vsswriterd" and .event == "writer-state" and .state_name == "waiting-for-thaw") and
	any(.[]; .event == "set-created") and any(.[]; .event == "snapshot-created")' "$T/monitor.json" >/dev/null; then
	tap OK "vssctl monitor shows writer state changes, sets created and the module's events"
else
	tap FAIL "vssctl monitor shows writer state changes, sets created and the module's events" "$(head -c 300 "$T/monitor.json")"
fi
clean_sets

# --- vetoes ------------------------------------------------------------------------
section "vetoes"
for step in freeze prepare-snapshot; do
	start_writer veto "$T/veto-$step.log" --class back-end --fail "$step:retryable" --fail-times 1
	: >"$hooklog"
	before=$(sets)
	vssctl create --storage "$store" --storage-limit 32M "$d0" >"$out" 2>"$err"
	rc=$?
	if [ $rc = 11 ] && grep -q "veto" "$err" && grep -q "test writer refuses $step" "$err"; then
		tap OK "a veto at $step: exit 11, the writer's name and reason reach the requester"
	else
		tap FAIL "a veto at $step: exit 11, the writer's name and reason reach the requester" "rc $rc: $(cat "$err")"
	fi
	[ "$(sets)" = "$before" ] && tap OK "veto at $step: no snapshot exists after" || tap FAIL "veto at $step: no snapshot exists after"
	sleep 0.3
	all=1
	for l in "$T/web.log" "$T/db.log" "$T/sys.log" "$T/veto-$step.log"; do
		[ "$(tail -n 40 "$l" | awk '$2 == "abort"' | wc -l)" -ge 1 ] || all=0
	done
	grep -q "10-log abort" "$hooklog" || all=0
	[ $all = 1 ] && tap OK "veto at $step: every writer got abort (processes and hooks)" ||
		tap FAIL "veto at $step: every writer got abort (processes and hooks)"
	vssctl --json writers >"$out"
	jq -e --arg s "$step" '.[] | select(.name == "veto") | .state_name == "failed-at-\($s)" and
		.last_error.failure == "retryable" and (.last_error.message | test("refuses"))' "$out" >/dev/null &&
		tap OK "vssctl writers shows the veto: failed-at-$step, retryable, its reason and time" ||
		tap FAIL "vssctl writers shows the veto: failed-at-$step" "$(jq -c '.[] | select(.name == "veto")' "$out")"
	no_fs_frozen && tap OK "veto at $step: no filesystem is frozen" || tap FAIL "veto at $step: no filesystem is frozen"
	# The next sequence works; the failed writer is stable again, not restarted.
	requester --end complete >"$out"
	vssctl --json writers >"$T/w.json"
	jq -e '.ok' "$out" >/dev/null && jq -e '.[] | select(.name == "veto") | .state == 1' "$T/w.json" >/dev/null &&
		tap OK "after a good sequence the vetoing writer is stable again, without a restart" ||
		tap FAIL "after a good sequence the vetoing writer is stable again" "$(head -c 300 "$out")"
	kill "${wpids[-1]}"; wait "${wpids[-1]}" 2>/dev/null; unset 'wpids[-1]'
	clean_sets
done

# --- a set that lacks a device of a writer's component -------------------------------
# (The hook that freezes $m1 itself stays out of these sets: *.bak is skipped.)
mv "$T/hooks/20-fsfreeze" "$T/hooks/20-fsfreeze.bak"
start_writer pg2 "$T/pg2.log" --class back-end --path "$m0" --path "$m1"
vssctl create --storage "$store" --storage-limit 32M "$d0" >"$out" 2>"$err"
rc=$?
[ $rc = 11 ] && grep -q "pg2.*lacks ${d1#/dev/}" "$err" && ! grep -q prepare-backup "$T/pg2.log" &&
	[ "$(sets)" = 0 ] &&
	tap OK "a set lacking a device of a writer's component: inconsistent-snapshot, before anything is asked" ||
	tap FAIL "a set lacking a device of a writer's component: inconsistent-snapshot" "rc $rc"
vssctl --json create --writer-volumes --storage "$store" --storage-limit 32M >"$out" 2>"$err"
jq -e '(.snapshots | length) == 2 and any(.writers[]; .name == "pg2" and .took_part)' "$out" >/dev/null &&
	tap OK "--writer-volumes takes every device of the writers' components" ||
	tap FAIL "--writer-volumes takes every device of the writers' components" "$(cat "$err")"
set_w=$(jq -r '.set_id' "$out")
vssctl abort "$set_w" >/dev/null 2>&1
wait_for 5 grep -q "backup-complete.*success=0" "$T/pg2.log" && [ "$(sets)" = 0 ] &&
	tap OK "vssctl abort SET: the writers are told the backup failed, the set is deleted" ||
	tap FAIL "vssctl abort SET: the writers are told the backup failed, the set is deleted"
kill "${wpids[-1]}"; wait "${wpids[-1]}" 2>/dev/null; unset 'wpids[-1]'
mv "$T/hooks/20-fsfreeze.bak" "$T/hooks/20-fsfreeze"
clean_sets

# --- a writer that hangs in freeze ---------------------------------------------------
section "hang"
start_writer slow "$T/slow.log" --class front-end --hang freeze:3000
t0=$(ms_now)
requester --step-timeout 800 --end complete >"$out" 2>/dev/null
t1=$(ms_now)
if jq -e '.ok == false and any(.writers[]; .name == "slow" and .failure == "timeout" and .state_name == "failed-at-freeze")' "$out" >/dev/null &&
	[ $((t1 - t0)) -lt 5000 ]; then
	tap OK "a writer hanging in freeze fails with timeout, within the limit ($((t1 - t0)) ms)"
else
	tap FAIL "a writer hanging in freeze fails with timeout, within the limit" "$((t1 - t0)) ms $(head -c 300 "$out")"
fi
fz=$(ev "$T/slow.log" freeze)
ab=$(awk -v f="${fz:-0}" '$2 == "abort" && $1 > f { print $1; exit }' "$T/db.log")
[ -n "$ab" ] && [ $(((ab - fz) / 1000000)) -lt 2500 ] &&
	tap OK "the others got abort (thawed) $(((ab - fz) / 1000000)) ms after the freeze began" ||
	tap FAIL "the others got abort within the limit" "freeze $fz abort ${ab:-none}"
wait_for 10 grep -q " abort " "$T/slow.log" && not_frozen_log "$T/slow.log" &&
	tap OK "the hung writer gets abort once its freeze returns" || tap FAIL "the hung writer gets abort once its freeze returns"
[ "$(sets)" = 0 ] && no_fs_frozen && tap OK "nothing is left: no set, nothing frozen" || tap FAIL "nothing is left: no set, nothing frozen"
kill "${wpids[-1]}"; wait "${wpids[-1]}" 2>/dev/null; unset 'wpids[-1]'

# --- SIGKILL of the requester at each step ---------------------------------------------
section "requester kills"
for step in prepare-backup prepare-snapshot freeze thaw post-snapshot; do
	start_writer killer "$T/k-$step.log" --class back-end --kill-at "$step:$T/req.pid"
	: >"$hooklog"
	rm -f "$T/req.pid"
	t0=$(ms_now)
	requester --pidfile "$T/req.pid" --step-timeout 3000 >"$out" 2>/dev/null
	rc=$?
	ok=1
	wait_for 6 sh -c "tail -n 20 '$T/k-$step.log' | grep -q ' abort '" || ok=0
	t1=$(ms_now)
	for l in "$T/web.log" "$T/db.log" "$T/sys.log" "$T/k-$step.log"; do not_frozen_log "$l" || ok=0; done
	if [ $rc -ge 128 ] && [ $ok = 1 ] && wait_for 5 no_sets && no_fs_frozen; then
		tap OK "requester killed at $step: writers got abort ($((t1 - t0)) ms), nothing frozen, no set left"
	else
		tap FAIL "requester killed at $step: writers got abort, nothing frozen, no set left" "rc $rc ok $ok sets $(sets)"
	fi
	kill "${wpids[-1]}"; wait "${wpids[-1]}" 2>/dev/null; unset 'wpids[-1]'
	clean_sets
done
# Dead while it holds the slot (prepared), and after the set (not detached).
t0=$(ms_now)
requester --die-after prepare >"$out" 2>/dev/null
wait_for 6 sh -c "tail -n 10 '$T/db.log' | grep -q ' abort '" && wait_for 5 no_sets &&
	tap OK "a requester dead after prepare-backup: abort, $(($(ms_now) - t0)) ms" ||
	tap FAIL "a requester dead after prepare-backup: abort"
t0=$(ms_now)
requester --die-after create >"$out" 2>/dev/null
if wait_for 6 sh -c "tail -n 10 '$T/db.log' | grep -q 'backup-complete.*success=0'" && wait_for 5 no_sets; then
	t1=$(ms_now)
	[ $((t1 - t0)) -lt 5000 ] && tap OK "a requester dead after the set: backup-complete with failure and the set deleted in $((t1 - t0)) ms (limit 4 s + 1 s)" ||
		tap FAIL "a requester dead after the set: within the step limit + 1 s" "$((t1 - t0)) ms"
else
	tap FAIL "a requester dead after the set: backup-complete with failure, set deleted" "sets $(sets)"
fi
requester --end complete >"$out" && tap OK "the next backup succeeds" || tap FAIL "the next backup succeeds" "$(head -c 300 "$out")"
clean_sets

# --- SIGKILL of a writer at each step --------------------------------------------------
section "writer kills"
for step in prepare-backup prepare-snapshot freeze thaw post-snapshot; do
	start_writer dying "$T/x-$step.log" --class back-end --die-at "$step"
	requester --step-timeout 3000 >"$out" 2>/dev/null
	rc=$?
	ok=1
	for l in "$T/web.log" "$T/db.log" "$T/sys.log"; do not_frozen_log "$l" || ok=0; done
	if [ $rc = 1 ] && jq -e '.writers[] | select(.name == "dying") | .failure == "not-responding"' "$out" >/dev/null &&
		[ $ok = 1 ] && wait_for 5 no_sets && no_fs_frozen; then
		tap OK "a writer killed at $step: the set fails (not-responding), nothing frozen, no set left"
	else
		tap FAIL "a writer killed at $step: the set fails, nothing frozen, no set left" "rc $rc $(head -c 300 "$out")"
	fi
	wait "${wpids[-1]}" 2>/dev/null; unset 'wpids[-1]'
done
requester --end complete >"$out" && tap OK "the next backup succeeds (the dead writer is left out)" ||
	tap FAIL "the next backup succeeds (the dead writer is left out)" "$(head -c 300 "$out")"
clean_sets

# --- SIGKILL of vsswriterd at each step ------------------------------------------------
section "daemon kills"
for step in identify prepare-backup prepare-snapshot freeze thaw post-snapshot; do
	start_writer assassin "$T/a-$step.log" --class back-end --kill-at "$step:$T/daemon.pid"
	: >"$hooklog"
	requester --step-timeout 3000 >"$out" 2>/dev/null
	rc=$?
	wait_for 5 daemon_gone
	why=
	# Every writer library undoes a sequence it was in; armed hook children run abort.
	for l in "$T/web.log" "$T/db.log" "$T/sys.log" "$T/a-$step.log"; do
		wait_for 3 not_frozen_log "$l" || why+=" ${l##*/} frozen"
	done
	if [ "$step" != identify ] && [ "$step" != post-snapshot ]; then
		wait_for 5 sh -c "tail -n 8 '$T/db.log' | grep -q 'abort.*watchdog=1'" || why+=" db not aborted"
	fi
	if [ "$step" != identify ]; then
		wait_for 5 grep -q "10-log abort" "$hooklog" || why+=" hook not aborted"
	fi
	wait_for 5 no_fs_frozen || why+=" a filesystem frozen"
	start_daemon
	wait_for 5 sh -c "[ \$(vssctl --json writers | jq '[.[] | select(.connected and .kind == \"process\")] | length') -ge 4 ]" ||
		why+=" writers not back"
	# Past post-snapshot there is no abort: a writer that finished it is
	# told, once it is back, that the backup failed.
	if [ "$step" = post-snapshot ]; then
		wait_for 5 sh -c "tail -n 8 '$T/db.log' | grep -q 'abort.*watchdog=1\|backup-complete.*success=0'" ||
			why+=" db not told"
	fi
	left=$(sets)
	[ "$left" = 0 ] || why+=" $left sets left"
	[ $rc != 0 ] || why+=" requester rc 0"
	if [ -z "$why" ]; then
		tap OK "vsswriterd killed at $step: writers and hooks undone, nothing frozen, no set after restart"
	else
		tap FAIL "vsswriterd killed at $step: writers and hooks undone, nothing frozen, no set" "$why; $(tail -n 4 "$T/db.log" | tr '\n' '|')"
	fi
	kill "${wpids[-1]}"; wait "${wpids[-1]}" 2>/dev/null; unset 'wpids[-1]'
	clean_sets
done
requester --end complete >"$out" && tap OK "the next backup succeeds with the restarted vsswriterd and reconnected writers" ||
	tap FAIL "the next backup succeeds with the restarted vsswriterd" "$(head -c 300 "$out")"
# Killed during backup-complete of a detached set: the set survives the restart.
start_writer assassin "$T/a-bc.log" --class back-end --kill-at "backup-complete:$T/daemon.pid"
requester --end detach >"$out"
set_bc=$(jq -r '.set_id' "$out")
vssctl backup-complete "$set_bc" >/dev/null 2>&1
wait_for 5 daemon_gone
kill "${wpids[-1]}"; wait "${wpids[-1]}" 2>/dev/null; unset 'wpids[-1]'
start_daemon
expect 0 "vsswriterd killed during backup-complete: the detached set waits again after a restart" \
	vssctl backup-complete "$set_bc"
clean_sets

# --- two requesters at once ------------------------------------------------------------
section "two requesters"
requester --queue-timeout 30000 --end complete >"$T/r1.json" 2>/dev/null &
r1=$!
requester --queue-timeout 30000 --end complete >"$T/r2.json" 2>/dev/null &
r2=$!
wait $r1; rc1=$?
wait $r2; rc2=$?
c1=$(jq -r '.created_ns' "$T/r1.json") c2=$(jq -r '.created_ns' "$T/r2.json")
if [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$(sets)" = 2 ] && [ "$c1" != "$c2" ]; then
	tap OK "two requesters at once: both succeed, one after the other"
else
	tap FAIL "two requesters at once: both succeed" "rc $rc1/$rc2 sets $(sets)"
fi
clean_sets

# --- qemu-ga hooks, unchanged ----------------------------------------------------------
section "qemu-ga"
rm -f "$T/hooks/"*
cat >"$T/qga/mysql-flush.sh" <<EOF
#!/bin/sh
# An fsfreeze-hook.d script as qemu-guest-agent users have them.
FREEZE_LOG=$hooklog
case "\$1" in
    freeze)
        echo "\$(date +%s%N) qga-mysql freeze" >> \$FREEZE_LOG
        ;;
    thaw)
        echo "\$(date +%s%N) qga-mysql thaw" >> \$FREEZE_LOG
        ;;
    *)
        exit 1
        ;;
esac
EOF
cat >"$T/qga/zz-veto.sh" <<EOF
#!/bin/sh
case "\$1" in
    freeze) echo "\$(date +%s%N) qga-veto freeze" >> $hooklog
            [ -e $T/qga-veto ] && { echo "cannot lock"; exit 1; } ;;
    thaw) echo "\$(date +%s%N) qga-veto thaw" >> $hooklog ;;
esac
exit 0
EOF
printf '#!/bin/sh\necho sample >> %s\n' "$hooklog" >"$T/qga/x.sh.sample"
chmod 755 "$T/qga/"*
: >"$hooklog"
requester --end complete >"$out"
if jq -e '.ok' "$out" >/dev/null && grep -q "qga-mysql freeze" "$hooklog" && grep -q "qga-mysql thaw" "$hooklog" &&
	[ "$(grep -c . "$hooklog")" = 4 ] && ! grep -q sample "$hooklog"; then
	tap OK "an unchanged qemu-ga hook directory: freeze and thaw only, nothing else"
else
	tap FAIL "an unchanged qemu-ga hook directory: freeze and thaw only" "$(cat "$hooklog")"
fi
fm=$(hv qga-mysql freeze) fv=$(hv qga-veto freeze)
[ -n "$fm" ] && [ "$fm" -lt "$fv" ] && tap OK "qemu-ga scripts run one after the other, in name order" ||
	tap FAIL "qemu-ga scripts run one after the other, in name order"
touch "$T/qga-veto"
: >"$hooklog"
requester --end complete >"$out"
if jq -e '.ok == false and .writer == "qemu-ga/zz-veto.sh" and (.error | test("cannot lock"))' "$out" >/dev/null; then
	tap OK "a qemu-ga script failing freeze vetoes the set (unlike qemu-ga), with its output as the reason"
else
	tap FAIL "a qemu-ga script failing freeze vetoes the set" "$(head -c 300 "$out")"
fi
grep -q "qga-veto thaw" "$hooklog" && grep -q "qga-mysql thaw" "$hooklog" &&
	tap OK "and thaw runs after the failed freeze too, so nothing leaks" ||
	tap FAIL "and thaw runs after the failed freeze too" "$(cat "$hooklog")"
rm -f "$T/qga/"* "$T/qga-veto"
clean_sets

# --- non-root requesters and writers from the wrong uid ---------------------------------
section "non-root"
setpriv --reuid=65534 --regid=65534 --clear-groups vssctl create --storage "$store" --storage-limit 32M "$d0" >"$out" 2>"$err"
rc=$?
[ $rc = 4 ] && grep -q "may not act as a requester" "$err" &&
	tap OK "a non-root requester is refused (exit 4)" || tap FAIL "a non-root requester is refused (exit 4)" "rc $rc $(cat "$err")"
mkdir -p "$T/store-g" && chown 65534:4242 "$T/store-g" && chmod 770 "$T/store-g"
setpriv --reuid=65534 --regid=4242 --clear-groups vss_test_requester --storage "$T/store-g" --limit 32M \
	--volume "$d0" --end complete >"$out" 2>"$err"
jq -e '.ok' "$out" >/dev/null && tap OK "a member of the requester group may take a set" ||
	tap FAIL "a member of the requester group may take a set" "$(head -c 300 "$out")"
setpriv --reuid=65534 --regid=4242 --clear-groups vss_test_requester --storage /etc --volume "$d0" >"$out" 2>"$err"
jq -e '.ok == false and (.error | test("may not write"))' "$out" >/dev/null &&
	tap OK "but not with a storage it could not write itself" || tap FAIL "but not with a storage it could not write itself" "$(head -c 300 "$out")"
touch "$T/pg.log" && chmod 666 "$T/pg.log"
setpriv --reuid=65534 --regid=65534 --clear-groups vss_test_writer --name pg --log "$T/pg.log" 2>"$err"
rc=$?
[ $rc = 4 ] && grep -q "must connect as uid 1234" "$err" &&
	tap OK "a writer from the wrong uid is refused, naming the uid it needs" || tap FAIL "a writer from the wrong uid is refused" "rc $rc $(cat "$err")"
setpriv --reuid=65534 --regid=65534 --clear-groups vss_test_writer --name intruder --log "$T/pg.log" 2>"$err"
rc=$?
[ $rc = 4 ] && grep -q "not configured" "$err" &&
	tap OK "a non-root writer under a name not configured is refused" || tap FAIL "a non-root writer under a name not configured is refused" "rc $rc $(cat "$err")"
mkdir -m 1777 "$T/u"
setpriv --reuid=1234 --regid=1234 --clear-groups vss_test_writer --name pg --log "$T/pg.log" --ready "$T/u/pg.ready" 2>"$err" &
pgw=$!
wait_for 10 test -e "$T/u/pg.ready" && tap OK "the configured writer registers from its uid" || tap FAIL "the configured writer registers from its uid" "$(cat "$err")"
kill $pgw; wait $pgw 2>/dev/null
clean_sets

# --- malformed messages --------------------------------------------------------------
section "malformed"
/usr/bin/python3 - "$T" >"$out" 2>&1 <<'EOF'
import json, os, random, socket, sys
path = "/run/vss/writerd.sock"
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(5)
    return s
def recv(s):
    buf = b""
    while not buf.endswith(b"\0"):
        try:
            d = s.recv(65536)
        except socket.timeout:
            return None
        if not d:
            return None if not buf else json.loads(buf.rstrip(b"\0"))
        buf += d
    return json.loads(buf.split(b"\0")[0])
def closed(s):
    try:
        return s.recv(1) == b""
    except Exception:
        return True
results = {}
keeper = conn()                      # another client, busy all along
keeper.sendall(b'{"method":"io.vss.Coordinator.Monitor","more":true}\0')
results["monitor"] = recv(keeper) is not None
s = conn(); s.sendall(b'{"method": "io.vss.Requester.Gath\0')
r = recv(s); results["truncated"] = bool(r and r.get("error") == "io.vss.MalformedMessage" and closed(s))
s = conn()
try:
    s.sendall(b'{' + b' ' * (1 << 20) + b'}\0')
except OSError:
    pass
r = recv(s); results["huge"] = bool(r and r.get("error") == "io.vss.MessageTooLarge")
s = conn(); s.sendall(b'{"method":"io.vss.Writer.Register","more":true,"parameters":{"protocol":1,"name":5}}\0')
r = recv(s); results["wrong_type"] = bool(r and r.get("error") == "org.varlink.service.InvalidParameter" and "name" in r["parameters"]["message"])
s.sendall(b'{"method":"org.varlink.service.GetInfo"}\0')
r = recv(s); results["still_usable"] = bool(r and r["parameters"].get("product") == "vsswriterd")
rnd = random.Random(7)
for i in range(100):
    s = conn()
    try:
        s.sendall(bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(1, 300))) + b"\0")
    except OSError:
        pass
    s.close()
s = conn(); s.sendall(b'\xff\xfe{"method":1}\0')
r = recv(s); results["garbage"] = bool(r and "error" in r)
s = conn(); s.sendall(b'{"method":"org.varlink.service.GetInfo"}\0')
results["alive"] = bool(recv(s))
print(json.dumps(results))
EOF
if jq -e '.monitor and .truncated and .huge and .wrong_type and .still_usable and .garbage and .alive' "$out" >/dev/null 2>&1; then
	tap OK "malformed messages (truncated, huge, wrong types, random bytes): clear errors, the daemon keeps running"
else
	tap FAIL "malformed messages: clear errors, the daemon keeps running" "$(cat "$out")"
fi
requester --end complete >"$out" && tap OK "and the writers connected all along are not affected: a backup succeeds" ||
	tap FAIL "and the writers connected all along are not affected" "$(head -c 300 "$out")"
clean_sets
stop_writers
stop_daemon

# --- socket activation and sd_notify ---------------------------------------------------
section "socket activation"
if command -v systemd-socket-activate >/dev/null; then
	/usr/bin/python3 - "$T" >"$out" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1] + "/notify")
s.settimeout(20)
try:
    print(s.recv(4096).decode())
except socket.timeout:
    print("TIMEOUT")
EOF
	py=$!
	wait_for 5 test -S "$T/notify"
	write_config
	systemd-socket-activate -E NOTIFY_SOCKET="$T/notify" -l "$T/act.sock" \
		vsswriterd --foreground -c "$conf" --state-dir "$T/act-state" >"$T/act.log" 2>&1 &
	act=$!
	sleep 0.5
	# The first connection starts the daemon on the passed socket.
	VSS_WRITERD_SOCKET=$T/act.sock vssctl --json writers >"$T/act.json" 2>&1
	rc=$?
	wait $py
	if [ $rc = 0 ] && grep -q "ready on $T/act.sock (socket activation)" "$T/act.log" && grep -q "READY=1" "$out"; then
		tap OK "socket activation (sd_listen_fds) and Type=notify READY=1"
	else
		tap FAIL "socket activation (sd_listen_fds) and Type=notify READY=1" "rc $rc $(cat "$T/act.log" "$out" | head -5)"
	fi
	kill $act 2>/dev/null; wait $act 2>/dev/null
else
	skip "systemd-socket-activate is not installed"
fi

# --- --no-writers ------------------------------------------------------------------------
section "no-writers"
start_daemon
start_writer web2 "$T/web2.log" --class front-end
vssctl create --no-writers --storage "$store" --storage-limit 32M "$d0" >"$out" 2>"$err"
rc=$?
[ $rc = 0 ] && ! grep -q "prepare-backup" "$T/web2.log" && ! grep -q "writers:" "$out" &&
	tap OK "--no-writers bypasses vsswriterd: no writer is asked" || tap FAIL "--no-writers bypasses vsswriterd" "rc $rc"
clean_sets
section end
echo "1..$n"
exit $((failures > 0))
