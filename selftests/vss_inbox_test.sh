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
#   - the same with --no-writers: no backup_label, crash recovery, just as
#     complete (the set is atomic);
#   - MariaDB with its data (ext4) and redo and binary logs (xfs) on two
#     disks, a client inserting numbered rows in transactions: a backup
#     with borg through `vssctl exec`, restored: InnoDB recovers, every
#     committed row is there, CHECK TABLE is clean;
#   - a server that is down vetoes the set with the server's message;
#     COMMAND's exit status is vssctl's; vssctl exec killed with SIGKILL
#     while COMMAND runs leaves nothing mounted, held or frozen.
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

PLAN=33
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
	as_pg "$PGBIN/pg_ctl -D $PGDATA -m immediate -w stop" >/dev/null 2>&1
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
printf '[vsswriterd]\nstep-timeout = 30s\n' >"$T/vsswriterd.conf"
vsswriterd --foreground -c "$T/vsswriterd.conf" >>"$daemon_log" 2>&1 &
daemon_pid=$!
wait_for 10 vssctl writers >/dev/null 2>&1

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

pg_backup_run "postgresql"
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
