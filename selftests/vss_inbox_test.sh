#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The in-box writers end to end, in the VM, with Debian's real servers and
# backup tools (PostgreSQL 15, MariaDB 10.11, restic, borg), the real
# vsswriterd, the real module and vssctl exec:
#   - PostgreSQL with its data (ext4) and WAL (xfs) on two disks, under
#     pgbench load and a client committing numbered rows: a backup with
#     restic through `vssctl exec`, restored to fresh disks: the server
#     starts, completes backup recovery (the writer's backup_label), holds
#     every row committed before the backup began, and pg_amcheck is clean;
#     the backup begins with a spread checkpoint (the writer's default),
#     and restic runs at idle priority (vssctl exec --idle);
#   - a spread checkpoint that would outlast two thirds of the step's limit
#     is hurried by the writer (an immediate CHECKPOINT); a bad
#     --checkpoint value is refused;
#   - the same with --no-writers: no backup_label, crash recovery, just as
#     complete (the set is atomic);
#   - MariaDB with its data (ext4) and redo and binary logs (xfs) on two
#     disks, a client inserting numbered rows in transactions: a backup
#     with borg through `vssctl exec`, restored: InnoDB recovers, every
#     committed row is there, CHECK TABLE is clean;
#   - a server that is down vetoes the set with the server's message;
#     COMMAND's exit status is vssctl's; vssctl exec killed with SIGKILL
#     while COMMAND runs leaves nothing mounted, held or frozen;
#   - each writer SIGKILLed at each step (identify .. backup-complete), and
#     each server stopped during the backup (before the writers' freeze, and
#     after the commit before their thaw): a veto or abort naming the
#     writer (after the commit: the set deleted, or a failed
#     backup-complete), nothing frozen or left within the step limit + 1 s,
#     the server undisturbed (writes and DDL go on, no session, slot or
#     BACKUP STAGE left, a new backup starts at once).
#
# Disks: 0 pg data, 1 pg WAL, 2 backup repositories and the diff storage,
#        3 4 the PostgreSQL restore, 5 my data, 6 my logs, 7 8 the MariaDB
#        restore.
set -u

repo=${VSS_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
export PATH=$repo/build/bin:$PATH
read -r -a disks <<<"${VSS_DISKS:-}"
# shellcheck source=selftests/tap.sh
. "$repo/selftests/tap.sh"

PLAN=58
if [ "$(id -u)" != 0 ] || [ ${#disks[@]} -lt 9 ]; then
	echo "1..0 # SKIP needs root and nine scratch disks"
	exit 0
fi
echo "1..$PLAN"

PGBIN=/usr/lib/postgresql/15/bin
T=$(mktemp -d /tmp/inbox.XXXXXX)
chmod 755 "$T"
export HOME=$T/home XDG_CACHE_HOME=$T/cache
mkdir -p "$HOME" "$XDG_CACHE_HOME"
export RESTIC_PASSWORD=vss-test RESTIC_REPOSITORY=/tmp/inbox/repo/restic
export BORG_REPO=/tmp/inbox/repo/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
	BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
PGDATA=/tmp/inbox/pg/data PGWAL=/tmp/inbox/pg/wal MYDATA=/tmp/inbox/my/data MYLOG=/tmp/inbox/my/log
STORE=/tmp/inbox/repo/store
daemon_log=$T/vsswriterd.log
bg_pids=()

ms_now() { echo $(($(date +%s%N) / 1000000)); }
t_suite=$(ms_now)
section() { echo "inbox: $(($(ms_now) - t_suite)) ms: $*" >&2; }

wait_for() { # SECONDS CMD...
	local end=$(($(ms_now) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(ms_now)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

as_pg() { su postgres -s /bin/sh -c "$*"; }
psql_q() { psql -h /tmp -U postgres -X -q -A -t postgres -c "$1"; }
my_q() { mariadb --defaults-file="$T/my.cnf" -N -B -e "$1"; }

# check NAME CMD...: one test, passing when CMD succeeds.
# (It writes $out and $err itself: a test must not read those.)
check() {
	local name=$1
	shift
	if "$@" >"$out" 2>"$err"; then tap OK "$name"; else tap FAIL "$name" "$(head -c 300 "$out")"; fi
}

fs_thawed() { fsfreeze -f "$1" 2>/dev/null && fsfreeze -u "$1"; }
no_sets() { [ "$(vssctl --json list 2>/dev/null | jq length)" = 0 ]; }
no_image_mounted() { ! grep -qs ' /dev/vss' /proc/[0-9]*/mountinfo && ! grep -qs '^/dev/vss' /proc/mounts; }
nothing_left() { no_sets && no_image_mounted; }
writers_stable() { vssctl --json writers | jq -e 'all(.[]; .state == 1)' >/dev/null; }
export -f fs_thawed no_sets no_image_mounted nothing_left writers_stable

cleanup() {
	local p
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
	as_pg "$PGBIN/pg_ctl -D $PGDATA/main -m immediate -w stop" >/dev/null 2>&1
	[ -f "$T/myrun/my.pid" ] && kill "$(cat "$T/myrun/my.pid")" 2>/dev/null
	sleep 1
	[ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null
	vssctl delete --all >/dev/null 2>&1
	umount -R /tmp/inbox/pg/data /tmp/inbox/pg/wal /tmp/inbox/my/data /tmp/inbox/my/log /tmp/inbox/repo 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# --- the disks and vsswriterd -------------------------------------------------------
mkdir -p /tmp/inbox/pg/data /tmp/inbox/pg/wal /tmp/inbox/my/data /tmp/inbox/my/log /tmp/inbox/repo
mkfs.ext4 -q -F "${disks[0]}" && mkfs.xfs -q -f "${disks[1]}" &&
	mkfs.ext4 -q -F "${disks[2]}" && mkfs.ext4 -q -F "${disks[5]}" && mkfs.xfs -q -f "${disks[6]}" &&
	mount "${disks[0]}" "$PGDATA" && mount "${disks[1]}" "$PGWAL" && mount "${disks[2]}" /tmp/inbox/repo &&
	mount "${disks[5]}" "$MYDATA" && mount "${disks[6]}" "$MYLOG"
mkdir -p "$STORE" /tmp/inbox/repo/restore
install -d -o mysql "$T/myrun"
# The hooks that stop a server during a backup (present only while those
# cases run): one before the database writers' freeze, one after the commit
# and before their thaw.
mkdir -p "$T/hooks"
cat >"$T/vsswriterd.conf" <<EOF
[vsswriterd]
step-timeout = 30s
hook-dir = $T/hooks
[hook 10-stop-before-freeze]
class = front-end
[hook 90-stop-before-thaw]
class = system
EOF
vsswriterd --foreground -c "$T/vsswriterd.conf" >>"$daemon_log" 2>&1 &
daemon_pid=$!
wait_for 10 vssctl writers >/dev/null 2>&1

# --- a writer killed at each step, a server stopped during the backup -------------
# The kill comes from vss_test_writer --kill-at, a writer of its own that
# SIGKILLs the database writer while it handles STEP. At freeze and thaw it
# is a system writer, so the database writer (back-end) has frozen (holds
# BACKUP STAGE BLOCK_COMMIT, or its backup) when it dies: before the commit
# at freeze, after it at thaw. At the other steps every writer gets the
# event at once, and the database writer dies during the step or right
# after answering it; vsswriterd fails the step either way.
killer_bin=$repo/build/selftests/vss_test_writer
steps="identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete"
DBW_LIMIT_MS=31000	# the step limit (30 s) + 1 s

db_writer_up() { # NAME: registered and connected as the pid in $T/dbw.pid, with its components
	vssctl --json writers | jq -e --arg n "$1" --argjson p "$(cat "$T/dbw.pid")" \
		'.[] | select(.name == $n) | .connected and .pid == $p and (.components | length) > 0' >/dev/null
}
start_db_writer() { # NAME CMD...
	local name=$1
	shift
	"$@" >>"$T/$name-writer.log" 2>&1 &
	echo $! >"$T/dbw.pid"
	bg_pids+=($!)
	wait_for 20 db_writer_up "$name"
}
proc_gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
all_clear() { nothing_left && fs_thawed "$1" && fs_thawed "$2"; }
export -f all_clear

# kill_at_each_step NAME SERVER-OK DIR1 DIR2 CMD...: the writer NAME (run
# by CMD) SIGKILLed at each step; SERVER-OK says the server is undisturbed.
kill_at_each_step() {
	local name=$1 server_ok=$2 d1=$3 d2=$4 step class rc t0 ms why pid killer err
	shift 4
	for step in $steps; do
		case $step in freeze | thaw) class=system ;; *) class=back-end ;; esac
		pid=$(cat "$T/dbw.pid")
		kill -0 "$pid" 2>/dev/null || start_db_writer "$name" "$@"
		pid=$(cat "$T/dbw.pid")
		rm -f "$T/killer.ready"
		"$killer_bin" --name "killer-$name" --class "$class" --kill-at "$step:$T/dbw.pid" \
			--log "$T/killer-$name-$step.log" --ready "$T/killer.ready" 2>>"$T/killer.err" &
		killer=$!
		wait_for 10 test -e "$T/killer.ready"
		t0=$(ms_now)
		if [ "$step" = backup-complete ]; then
			# COMMAND runs between post-snapshot and backup-complete: the
			# writer is stopped meanwhile, so that it is killed before it
			# can answer backup-complete (it has nothing to do there and
			# would answer at once).
			rm -f "$T/cmd.running" "$T/cmd.go"
			vssctl exec --storage "$STORE" -- sh -c 'touch "$1/cmd.running"
				while [ ! -e "$1/cmd.go" ]; do sleep 0.05; done' _ "$T" \
				>"$T/kill.out" 2>"$T/kill-$name-$step.err" &
			wait_for 30 test -e "$T/cmd.running"
			kill -STOP "$pid"
			touch "$T/cmd.go"
			wait $!
		else
			vssctl exec --storage "$STORE" -- true >"$T/kill.out" 2>"$T/kill-$name-$step.err"
		fi
		rc=$?
		wait_for 31 all_clear "$d1" "$d2"
		ms=$(($(ms_now) - t0))
		why=
		wait_for 5 proc_gone "$pid" || why="$why the writer was not killed;"
		err=$T/kill-$name-$step.err
		case $step in
		identify)
			# A writer that fails identify is left out: its components
			# with it, so no set is taken (exec is given no devices).
			# The kill races the writer's answer: dead right after
			# answering identify, it is in the sequence, and its
			# prepare-backup fails instead.
			if grep -q "^  $name .*left out" "$T/kill.out" "$err"; then
				[ $rc != 0 ] || why="$why rc 0;"
			else
				[ $rc = 11 ] || why="$why rc $rc, not 11 (a writer failed);"
				grep -q "writer $name failed at prepare-backup" "$err" ||
					why="$why $name neither left out at identify nor failed at prepare-backup;"
			fi ;;
		post-snapshot)
			# Dead during post-snapshot, or right after answering it:
			# the set is deleted either way, by the abort (before the
			# set was handed over) or after COMMAND, with a failed
			# backup-complete for the writer (after).
			if [ $rc = 11 ]; then
				grep -q "writer $name failed at " "$err" || why="$why $name not named;"
			else
				[ $rc = 0 ] || why="$why rc $rc;"
				grep -q "writer $name: backup-complete:" "$err" || why="$why $name not named;"
			fi ;;
		backup-complete)
			[ $rc = 0 ] || why="$why rc $rc, not 0 (COMMAND succeeded);"
			grep -q "writer $name: backup-complete: .*went away" "$err" ||
				why="$why the failed backup-complete of $name not reported;"
			grep -q "backup-complete (success), deleted" "$err" || why="$why the set not deleted;" ;;
		*)
			# Failed at the step, or at the next one it misses: the
			# daemon learns of a death after an answer only then (after
			# the commit, for a writer killed after its freeze).
			[ $rc = 11 ] || why="$why rc $rc, not 11 (a writer failed);"
			grep -q "writer $name failed at " "$err" || why="$why $name not named;" ;;
		esac
		all_clear "$d1" "$d2" || why="$why a set, a mount or a frozen filesystem left;"
		[ "$ms" -le $DBW_LIMIT_MS ] || why="$why cleared after $ms ms;"
		wait_for 10 "$server_ok" || why="$why the server is disturbed ($server_ok);"
		grep -hv 'using storage limit\|^writers: \|running sh$\|running true$' "$err" "$T/kill.out" | head -4 | sed "s/^/# $step: /"
		if [ -z "$why" ]; then
			tap OK "$name: its writer SIGKILLed at $step: exit $rc, $name named, nothing frozen or left ($ms ms), the server undisturbed"
		else
			tap FAIL "$name: its writer SIGKILLed at $step" "$why $(head -c 300 "$T/kill-$name-$step.err")"
		fi
		kill "$killer" 2>/dev/null
		wait "$killer" 2>/dev/null
	done
	kill -0 "$(cat "$T/dbw.pid")" 2>/dev/null || start_db_writer "$name" "$@"
}

# stop_during_backup NAME SERVER-START SERVER-OK DIR1 DIR2: the server
# stopped ($T/stop-server) by a hook before the writers' freeze, during
# the backup the writer holds from prepare-snapshot on; then after the
# commit, before their thaw.
stop_during_backup() {
	local name=$1 start=$2 server_ok=$3 d1=$4 d2=$5 at hook rc t0 ms why pid
	for at in freeze thaw; do
		case $at in freeze) hook=10-stop-before-freeze ;; thaw) hook=90-stop-before-thaw ;; esac
		# shellcheck disable=SC2016
		printf '#!/bin/sh\n[ "$1" = %s ] && exec %s\nexit 0\n' "$at" "$T/stop-server" >"$T/hooks/$hook"
		chmod 755 "$T/hooks/$hook"
		t0=$(ms_now)
		vssctl exec --storage "$STORE" -- true >"$T/stop.out" 2>"$T/stop-$name-$at.err"
		rc=$?
		wait_for 31 all_clear "$d1" "$d2"
		ms=$(($(ms_now) - t0))
		rm -f "$T/hooks/$hook"
		why=
		[ $rc = 11 ] || why="$why rc $rc, not 11;"
		grep -q "writer $name failed at" "$T/stop-$name-$at.err" || why="$why the writer not named;"
		all_clear "$d1" "$d2" || why="$why a set, a mount or a frozen filesystem left;"
		[ "$ms" -le $DBW_LIMIT_MS ] || why="$why cleared after $ms ms;"
		"$start"
		wait_for 10 "$server_ok" || why="$why the restarted server is disturbed;"
		grep -hv 'using storage limit\|^writers: \|running true$' "$T/stop-$name-$at.err" "$T/stop.out" | head -4 | sed "s/^/# stopped before $at: /"
		if [ -z "$why" ]; then
			tap OK "$name: the server stopped during the backup (before the writers' $at): exit 11 naming $name, nothing frozen or left ($ms ms), it restarts undisturbed"
		else
			tap FAIL "$name: the server stopped during the backup (before the writers' $at)" "$why $(head -c 300 "$T/stop-$name-$at.err")"
		fi
	done
	# Given no devices, exec takes the set of the writers' components: only
	# this writer has some, so a set means that it took part.
	pid=$(cat "$T/dbw.pid")
	if vssctl exec --storage "$STORE" -- true >"$T/next.out" 2>&1 && no_sets &&
		vssctl --json writers | jq -e --arg n "$name" --argjson p "$pid" \
			'.[] | select(.name == $n) | .pid == $p and .connected and .state == 1' >/dev/null; then
		tap OK "$name: its writer outlived the stops, and the next backup takes it in"
	else
		tap FAIL "$name: its writer outlived the stops, and the next backup takes it in" "$(head -c 400 "$T/next.out")"
	fi
}

# --- PostgreSQL -------------------------------------------------------------------
section "postgresql"
pg_start() { # LOG
	as_pg "$PGBIN/pg_ctl -D $PGDATA/main -o '-c unix_socket_directories=/tmp -c listen_addresses= -c max_wal_size=128MB' -l $1 -w -t 300 start" >/dev/null
}
pg_stop() { as_pg "$PGBIN/pg_ctl -D $PGDATA/main -m fast -w -t 120 stop" >/dev/null 2>&1; }
chown postgres: "$PGDATA" "$PGWAL"
install -d -o postgres "$T/pglog"
as_pg "$PGBIN/initdb -D $PGDATA/main --waldir=$PGWAL/wal" >"$T/initdb.log" 2>&1 && pg_start "$T/pglog/pg.log" &&
	as_pg "pgbench -h /tmp -i -q -s 2 postgres" >"$T/pgbench-init.log" 2>&1 &&
	psql_q "CREATE TABLE marks (n int PRIMARY KEY, at timestamptz DEFAULT now());
		CREATE TABLE backup_marks (name text PRIMARY KEY)" >/dev/null
check "PostgreSQL 15 runs with its data on ext4 (${disks[0]}) and its WAL on xfs (${disks[1]})" \
	psql_q "SELECT count(*) FROM pgbench_accounts"

vss-writer-postgresql --checkpoint slow >"$T/pgw-bad.out" 2>"$T/pgw-bad.err"
rc=$?
check "vss-writer-postgresql --checkpoint slow: exit 2, naming the option and what it takes" \
	bash -c '[ "$1" = 2 ] && grep -qx "vss-writer-postgresql: --checkpoint slow: give fast or spread" "$2" &&
		! vssctl --json writers | jq -e ".[] | select(.name == \"postgresql\")" >/dev/null' _ "$rc" "$T/pgw-bad.err"
# The writer's default: a spread checkpoint starts each backup.
vss-writer-postgresql --conninfo "host=/tmp dbname=postgres user=postgres" >"$T/pgw.log" 2>&1 &
pgw_pid=$!
bg_pids+=("$pgw_pid")
pg_writer_ready() {
	vssctl --json writers | jq -e '.[] | select(.name == "postgresql") |
		(.components[0].paths | index("'"$PGDATA"'/main") != null) and
		(.components[0].paths | index("'"$PGWAL"'/wal") != null)' >/dev/null
}
# The components are learned at the first identify, which any gather runs.
wait_for 20 pg_writer_ready
check "the writer names the data directory and the WAL directory (found from the server)" pg_writer_ready

# Load: pgbench, and a client committing numbered rows; its last
# committed number is in $T/pg.last after each commit.
pg_load_start() {
	as_pg "pgbench -h /tmp -c 2 -T 900 postgres" >"$T/pgbench.log" 2>&1 &
	bg_pids+=($!)
	(

		i=$(psql_q "SELECT coalesce(max(n), 0) FROM marks")
		while [ ! -e "$T/pg.stop" ]; do
			i=$((i + 1))
			psql_q "INSERT INTO marks VALUES ($i)" >/dev/null 2>&1 || break
			echo "$i" >"$T/pg.last"
		done
	) &
	marks_pid=$!
	bg_pids+=("$marks_pid")
	wait_for 30 test -s "$T/pg.last"
	sleep 2
}
pg_load_stop() {
	touch "$T/pg.stop"
	wait "$marks_pid" 2>/dev/null
	pkill -x pgbench
	wait_for 30 bash -c '! pgrep -x pgbench >/dev/null'
	rm -f "$T/pg.stop"
}

# The backup tool, run by vssctl exec: it records what it was given.
cat >"$T/backup-restic.sh" <<'EOF'
#!/bin/bash
env | grep '^VSS_' | sort > "$VSS_TEST_DIR/exec.env"
echo "$(cut -d' ' -f19 /proc/self/stat) $(ionice)" > "$VSS_TEST_DIR/exec.prio"
findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS -R "$VSS_MOUNT_ROOT" > "$VSS_TEST_DIR/exec.mounts"
cd "$VSS_MOUNT_ROOT" && restic --no-cache -q backup --tag "$VSS_SET_ID" tmp
EOF
chmod 755 "$T/backup-restic.sh"
export VSS_TEST_DIR=$T
restic --no-cache -q init >"$T/restic-init.log" 2>&1

# pg_backup_run NAME EXEC-ARGS...: a backup under load, the last row
# committed before it in $T/mark.
pg_backup_run() {
	local name=$1 rc t0
	shift
	pg_load_start
	# The row committed right before the backup begins.
	mark="$name $(date +%s%N)"
	psql_q "INSERT INTO backup_marks VALUES ('$mark')" >/dev/null
	before=$(cat "$T/pg.last")
	pglog_pos=$(stat -c %s "$T/pglog/pg.log" 2>/dev/null || echo 0)
	t0=$(ms_now)
	vssctl exec --storage "$STORE" --storage-limit 1G "$@" -- "$T/backup-restic.sh" >"$out" 2>"$err"
	rc=$?
	backup_ms=$(($(ms_now) - t0))
	pg_load_stop
	echo "# $name: vssctl exec + restic took $backup_ms ms; pgbench: $(grep -E '^(tps|latency average)' "$T/pgbench.log" | tr '\n' ' ')"
	if [ $rc = 0 ]; then tap OK "$name: vssctl exec ... restic backup under pgbench load: exit 0"; else
		tap FAIL "$name: vssctl exec ... restic backup under pgbench load: exit 0" "rc $rc: $(tail -3 "$err")"; fi
}

# pg_restore_check NAME LABEL(yes|no): restore the newest restic snapshot
# onto fresh disks at the same paths and start the server on it.
pg_restore_check() {
	local name=$1 label=$2 ok
	pg_stop
	umount "$PGDATA" "$PGWAL"
	mkfs.ext4 -q -F "${disks[3]}" && mkfs.xfs -q -f "${disks[4]}" &&
		mount "${disks[3]}" "$PGDATA" && mount -o nouuid "${disks[4]}" "$PGWAL"
	rm -rf "/tmp/inbox/repo/restore/pg"
	restic --no-cache -q restore latest --target "/tmp/inbox/repo/restore/pg" >"$T/restic-restore.log" 2>&1
	src=$(find "/tmp/inbox/repo/restore/pg" -type d -path '*/tmp/inbox/pg' | head -n1)
	cp -a "$src/data/." "$PGDATA/" && cp -a "$src/wal/." "$PGWAL/"
	if [ "$label" = yes ]; then
		check "$name: the restored data directory has the writer's backup_label" \
			grep -q "^LABEL: vss backup" "$PGDATA/main/backup_label"
	else
		check "$name: the restored data directory has no backup_label (crash-consistent image)" \
			test ! -e "$PGDATA/main/backup_label"
	fi
	rm -f "$T/pglog/restored.log"
	pg_start "$T/pglog/restored.log"
	if [ "$label" = yes ]; then
		check "$name: the server starts on the restore and completes backup recovery" \
			grep -q "completed backup recovery" "$T/pglog/restored.log"
	else
		check "$name: the server starts on the restore after crash recovery" \
			grep -q "database system was not properly shut down" "$T/pglog/restored.log"
	fi
	ok=$(psql_q "SELECT (SELECT count(*) FROM backup_marks WHERE name = '$mark') = 1 AND
		(SELECT count(*) FROM marks WHERE n <= $before) = $before")
	check "$name: every row committed before the backup is there (the mark committed right before, rows 1..$before)" \
		[ "$ok" = t ]
	check "$name: pg_amcheck --all is clean" \
		su postgres -s /bin/sh -c "$PGBIN/pg_amcheck -h /tmp --all --install-missing"
	sed 's/^/# restored: /' "$T/pglog/restored.log" | grep -E 'recovery|redo|ready' | head -8
}

pg_backup_run "postgresql" --idle
# PostgreSQL 15 logs each checkpoint's cause: "immediate" is a fast one.
check "the backup began with a spread checkpoint (server log: checkpoint starting: force wait, not immediate)" \
	bash -c 'tail -c +"$(($2 + 1))" "$1" | grep -m1 "checkpoint starting:.* wait" | grep -v immediate | grep -q "force wait"' \
	_ "$T/pglog/pg.log" "$pglog_pos"
check "exec --idle: restic ran at nice 19 in the idle I/O class" \
	bash -c '[ "$(cat "$1/exec.prio")" = "19 idle" ]' _ "$T"
check "COMMAND got the set, its images and their mount points in VSS_*" \
	bash -c 'grep -q "^VSS_SET_ID=[0-9a-f-]\{36\}$" "$1/exec.env" && grep -q "^VSS_IMAGE_COUNT=2$" "$1/exec.env" &&
		grep -q "^VSS_MOUNT_ROOT=/run/vss/exec$" "$1/exec.env" && grep -q "^VSS_IMAGE_0=/dev/vss" "$1/exec.env"' _ "$T"
check "the images were mounted read-only with the live layout (ext4 noload, xfs nouuid,norecovery)" \
	bash -c 'grep -qE "^/run/vss/exec/tmp/inbox/pg/data /dev/vss[0-9]+ ext4 ro,.*" "$1/exec.mounts" &&
		grep -qE "^/run/vss/exec/tmp/inbox/pg/wal /dev/vss[0-9]+ xfs ro,.*norecovery" "$1/exec.mounts"' _ "$T"
check "afterwards: no set, no image mounted anywhere, the writer stable, nothing frozen" \
	bash -c 'no_sets && no_image_mounted && writers_stable && fs_thawed "$1" && fs_thawed "$2"' _ "$PGDATA" "$PGWAL"
pg_restore_check "postgresql" yes

# The same backup without the writer: the atomic set alone.
section "postgresql --no-writers"
pg_stop
umount "$PGDATA" "$PGWAL"
mount "${disks[0]}" "$PGDATA" && mount "${disks[1]}" "$PGWAL"
pg_start "$T/pglog/pg.log"
pg_backup_run "postgresql --no-writers" --no-writers "${disks[0]}" "${disks[1]}"
pg_restore_check "postgresql --no-writers" no

# Back to the original disks for the failure cases.
pg_stop
umount "$PGDATA" "$PGWAL"
mount "${disks[0]}" "$PGDATA" && mount "${disks[1]}" "$PGWAL"
pg_start "$T/pglog/pg.log"

section "postgresql: a spread checkpoint hurried"
# No checkpoint of the server's own for an hour, a clean start, then pages
# made dirty: a spread checkpoint writes one every 0.1 s or so, far longer
# than 2/3 of a step limit of 9 s. The writer hurries it at 6 s.
psql_q "ALTER SYSTEM SET checkpoint_timeout = '1h'" >/dev/null && psql_q "SELECT pg_reload_conf()" >/dev/null &&
	psql_q "CHECKPOINT" >/dev/null &&
	psql_q "UPDATE pgbench_accounts SET filler = filler WHERE aid <= 40000" >/dev/null
pglog_pos=$(stat -c %s "$T/pglog/pg.log")
t0=$(ms_now)
"$repo/build/selftests/vss_test_requester" --storage "$STORE" --limit 1G --writer-volumes \
	--step-timeout 9000 >"$T/hurry.out" 2>"$T/hurry.err"
hurry_ms=$(($(ms_now) - t0))
echo "# the set with a hurried checkpoint took $hurry_ms ms; $(grep -h "spread checkpoint" "$T/pgw.log" | tail -n1)"
check "a spread checkpoint outlasting 2/3 of a 9 s step limit is hurried at 6 s, and the set is taken" \
	bash -c 'jq -e ".ok" "$1" >/dev/null &&
		grep -q "the spread checkpoint is not done after 6000 ms .*asking for an immediate one" "$2"' \
	_ "$T/hurry.out" "$T/pgw.log"
check "... the backup's checkpoint began spread, an immediate one hurried it (server log)" \
	bash -c 'tail -c +"$(($2 + 1))" "$1" | grep "checkpoint starting:" >"$3" &&
		grep -m1 . "$3" | grep -v immediate | grep -q "force wait" && grep -q "immediate force wait" "$3"' \
	_ "$T/pglog/pg.log" "$pglog_pos" "$T/hurry.ckpt"
vssctl delete --all >/dev/null 2>&1
psql_q "ALTER SYSTEM RESET checkpoint_timeout" >/dev/null && psql_q "SELECT pg_reload_conf()" >/dev/null

section "failures"
"$repo/build/bin/vssctl" exec --storage "$STORE" -- sh -c 'exit 3' >"$out" 2>"$err"
rc=$?
check "COMMAND's exit status is vssctl's (3), and the set is gone" bash -c '[ "$1" = 3 ] && no_sets' _ "$rc"
"$repo/build/bin/vssctl" exec --storage "$STORE" -- sh -c 'kill -TERM $$' >"$out" 2>"$T/exec.err"
rc=$?
check "COMMAND killed by SIGTERM: exit 143, backup-complete (failure), the set deleted" \
	bash -c '[ "$1" = 143 ] && grep -q "backup-complete (failure), deleted" "$2" && no_sets' _ "$rc" "$T/exec.err"

# SIGKILL of vssctl exec while COMMAND runs.
vssctl exec --storage "$STORE" -- sh -c 'echo $$ > "$VSS_TEST_DIR/cmd.pid"; sleep 300' >"$T/kill.out" 2>&1 &
exec_pid=$!
wait_for 60 test -s "$T/cmd.pid"
wait_for 10 grep -qs ' /dev/vss' /proc/[0-9]*/mountinfo
check "a running vssctl exec has its images mounted (in its own namespace only)" \
	bash -c 'grep -qs " /dev/vss" /proc/[0-9]*/mountinfo && ! grep -q "^/dev/vss" /proc/self/mounts'
kill -KILL "$exec_pid"
t_kill=$(ms_now)
wait "$exec_pid" 2>/dev/null
wait_for 31 nothing_left
kill_ms=$(($(ms_now) - t_kill))
echo "# vssctl exec SIGKILLed: nothing left after $kill_ms ms"
check "vssctl exec SIGKILLed: within the step limit + 1 s nothing is mounted or held ($kill_ms ms)" \
	bash -c 'nothing_left && [ "$1" -le 31000 ]' _ "$kill_ms"
check "... COMMAND was killed with it, the writer is stable, nothing is frozen" \
	bash -c '! ps -eo cmd | grep -q "^sleep 300" && writers_stable && fs_thawed "$1" && fs_thawed "$2"' _ "$PGDATA" "$PGWAL"

section "postgresql: the writer killed at each step, the server stopped"
pg_undisturbed() {
	# Writes go on, the killed writer's session and its temporary slot are
	# gone, and a new backup starts (and stops) at once.
	psql_q "INSERT INTO marks VALUES ((SELECT coalesce(max(n), 0) + 1 FROM marks))" >/dev/null &&
		[ "$(psql_q "SELECT count(*) FROM pg_replication_slots")" = 0 ] &&
		[ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
			AND pid <> pg_backend_pid()")" = 0 ] &&
		psql -h /tmp -U postgres -X -q -A -t postgres -c "SELECT pg_backup_start('probe', true)" \
			-c "SELECT pg_backup_stop(false)" >/dev/null
}
echo "$pgw_pid" >"$T/dbw.pid"
kill_at_each_step postgresql pg_undisturbed "$PGDATA" "$PGWAL" \
	vss-writer-postgresql --conninfo "host=/tmp dbname=postgres user=postgres" --checkpoint=fast
cat >"$T/stop-server" <<EOF
#!/bin/sh
exec su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $PGDATA/main -m fast -w -t 60 stop" >/dev/null 2>&1
EOF
chmod 755 "$T/stop-server"
pg_restart() { pg_start "$T/pglog/pg.log"; }
stop_during_backup postgresql pg_restart pg_undisturbed "$PGDATA" "$PGWAL"
pgw_pid=$(cat "$T/dbw.pid")
# A server that is down vetoes.
pg_stop
"$repo/build/bin/vssctl" exec --storage "$STORE" -- true >"$out" 2>"$T/exec.err"
rc=$?
check "PostgreSQL down: vssctl exec fails with exit 11 (a writer vetoed), the server's message" \
	bash -c '[ "$1" = 11 ] && grep -q "postgresql" "$2" && grep -q "cannot connect to the server" "$2" &&
		grep -q "s.PGSQL.5432" "$2"' _ "$rc" "$T/exec.err"
check "... and nothing is left: no set, no mount, nothing frozen" \
	bash -c 'nothing_left && fs_thawed "$1" && fs_thawed "$2"' _ "$PGDATA" "$PGWAL"
grep -h "cannot connect" "$T/exec.err" | head -2 | sed 's/^/# /'
kill "$pgw_pid"
wait "$pgw_pid" 2>/dev/null

# --- MariaDB --------------------------------------------------------------------------
section "mariadb"
chown mysql: "$MYDATA" "$MYLOG"
cat >"$T/my.cnf" <<EOF
[mysqld]
datadir=$MYDATA/db
innodb_log_group_home_dir=$MYLOG/redo
log_bin=$MYLOG/binlog/binlog
socket=/tmp/my.sock
pid-file=$T/myrun/my.pid
skip-networking
user=mysql
[client]
socket=/tmp/my.sock
EOF
my_start() {
	mariadbd --defaults-file="$T/my.cnf" >>"$1" 2>&1 &
	wait_for 120 my_q "SELECT 1" >/dev/null 2>&1
}
my_stop() {
	local pid
	pid=$(cat "$T/myrun/my.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait_for 60 bash -c '! kill -0 "$1" 2>/dev/null' _ "$pid"
}
install -d -o mysql -g mysql "$MYDATA/db" "$MYLOG/redo" "$MYLOG/binlog"
mariadb-install-db --defaults-file="$T/my.cnf" >"$T/my-install.log" 2>&1 && my_start "$T/myd.log" &&
	my_q "CREATE DATABASE t; CREATE TABLE t.marks (n INT PRIMARY KEY, pad CHAR(200)) ENGINE=InnoDB"
check "MariaDB runs with its data on ext4 (${disks[5]}), redo and binary logs on xfs (${disks[6]})" \
	my_q "SELECT count(*) FROM t.marks"
vss-writer-mariadb --socket-path /tmp/my.sock >"$T/myw.log" 2>&1 &
myw_pid=$!
bg_pids+=("$myw_pid")
my_writer_ready() {
	vssctl --json writers | jq -e '.[] | select(.name == "mariadb") |
		(.components[0].paths | index("'"$MYDATA"'/db") != null) and
		(.components[0].paths | index("'"$MYLOG"'/redo") != null) and
		(.components[0].paths | index("'"$MYLOG"'/binlog") != null)' >/dev/null
}
wait_for 20 my_writer_ready
check "the writer names the data, redo log and binary log directories" my_writer_ready

# A client inserting numbered rows, ten to a transaction.
(
	i=0
	while [ ! -e "$T/my.stop" ]; do
		sql="BEGIN;"
		for _ in 1 2 3 4 5 6 7 8 9 10; do i=$((i + 1)); sql="$sql INSERT INTO t.marks VALUES ($i, 'x');"; done
		my_q "$sql COMMIT;" >/dev/null 2>&1 || break
		echo "$i" >"$T/my.last"
	done
) &
myload_pid=$!
bg_pids+=("$myload_pid")
wait_for 30 test -s "$T/my.last"
sleep 2
my_before=$(cat "$T/my.last")
cat >"$T/backup-borg.sh" <<'EOF'
#!/bin/bash
cd "$VSS_MOUNT_ROOT" && borg create "::$VSS_SET_ID" tmp
EOF
chmod 755 "$T/backup-borg.sh"
borg init -e none >"$T/borg-init.log" 2>&1
t0=$(ms_now)
vssctl exec --storage "$STORE" --storage-limit 1G -- "$T/backup-borg.sh" >"$out" 2>"$err"
rc=$?
echo "# mariadb: vssctl exec + borg took $(($(ms_now) - t0)) ms"
touch "$T/my.stop"
wait "$myload_pid" 2>/dev/null
if [ $rc = 0 ]; then tap OK "mariadb: vssctl exec ... borg create while a client commits rows: exit 0"; else
	tap FAIL "mariadb: vssctl exec ... borg create while a client commits rows: exit 0" "rc $rc: $(tail -3 "$err")"; fi
check "afterwards: no set, no image mounted, the writer stable" bash -c 'nothing_left && writers_stable'

my_stop
umount "$MYDATA" "$MYLOG"
mkfs.ext4 -q -F "${disks[7]}" && mkfs.xfs -q -f "${disks[8]}" &&
	mount "${disks[7]}" "$MYDATA" && mount -o nouuid "${disks[8]}" "$MYLOG"
rm -rf "/tmp/inbox/repo/restore/my" && mkdir -p "/tmp/inbox/repo/restore/my"
(cd "/tmp/inbox/repo/restore/my" && borg extract "::$(borg list --short | tail -n1)") >"$T/borg-extract.log" 2>&1
src=$(find "/tmp/inbox/repo/restore/my" -type d -path '*/tmp/inbox/my' | head -n1)
cp -a "$src/data/." "$MYDATA/" && cp -a "$src/log/." "$MYLOG/"
find "$MYDATA" -name '#sql*' -delete
: >"$T/myd-restored.log"
my_start "$T/myd-restored.log"
check "mariadb: the server starts on the restore (InnoDB recovery)" my_q "SELECT 1"
got=$(my_q "SELECT count(*) FROM t.marks WHERE n <= $my_before")
check "mariadb: every row committed before the backup is there (1..$my_before)" [ "$got" = "$my_before" ]
got=$(my_q "SELECT count(*) % 10, max(n) % 10 FROM t.marks" | tr '\t' ' ')
check "mariadb: no transaction is torn (rows come in whole transactions of ten)" [ "$got" = "0 0" ]
check "mariadb: CHECK TABLE is clean (mariadb-check --all-databases)" \
	bash -c 'mariadb-check --defaults-file="$1" --all-databases >"$2" 2>&1 && ! grep -v "OK$" "$2" | grep -q .' _ "$T/my.cnf" "$T/mycheck.out"

section "mariadb: the writer killed at each step, the server stopped"
my_q "CREATE TABLE t.probe (n INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB"
my_undisturbed() {
	# A commit and DDL go through, the killed writer's connection is gone,
	# and a new BACKUP STAGE can be taken (none is left held).
	my_q "SET SESSION lock_wait_timeout = 5; INSERT INTO t.probe VALUES ();
		CREATE TABLE t.ddl_probe (n INT); DROP TABLE t.ddl_probe" &&
		[ "$(my_q "SELECT count(*) FROM information_schema.processlist WHERE user = 'root'
			AND id <> connection_id()")" = 0 ] &&
		my_q "SET SESSION lock_wait_timeout = 5; BACKUP STAGE START; BACKUP STAGE FLUSH;
			BACKUP STAGE BLOCK_DDL; BACKUP STAGE BLOCK_COMMIT; BACKUP STAGE END"
}
echo "$myw_pid" >"$T/dbw.pid"
kill_at_each_step mariadb my_undisturbed "$MYDATA" "$MYLOG" vss-writer-mariadb --socket-path /tmp/my.sock
cat >"$T/stop-server" <<EOF
#!/bin/sh
kill "\$(cat $T/myrun/my.pid)" || exit 1
while [ -e $T/myrun/my.pid ]; do sleep 0.1; done
EOF
chmod 755 "$T/stop-server"
my_restart() { my_start "$T/myd-restored.log"; }
stop_during_backup mariadb my_restart my_undisturbed "$MYDATA" "$MYLOG"
# MariaDB down vetoes too.
my_stop
"$repo/build/bin/vssctl" exec --storage "$STORE" -- true >"$out" 2>"$T/exec.err"
rc=$?
check "MariaDB down: vssctl exec fails with exit 11, with the server's message" \
	bash -c '[ "$1" = 11 ] && grep -q "mariadb" "$2" && grep -qi "can.t connect" "$2"' _ "$rc" "$T/exec.err"
check "... and nothing is left" nothing_left
grep -hi "connect" "$T/exec.err" | head -2 | sed 's/^/# /'

check "vsswriterd never failed to delete a set" bash -c '! grep -qi "cannot delete" "$1"' _ "$daemon_log"
section "done"
[ "$n" = "$PLAN" ] || echo "# the plan says $PLAN, $n ran"
exit $((failures > 0))
