#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The example backup agent (examples/vss-backup-agent.c) doing a backup
# product's whole job in the VM, while a writer keeps rewriting the device
# at random: a full backup and incrementals from snapshots, using the
# changed-block map; every point restored bit-exact against the image it
# came from (the agent keeps its snapshots with --keep); a new generation
# (untrack + track) and a resize each turn the next incremental into a
# full backup that says why and still restores exactly. Then the failure
# modes: an interrupted backup leaves no snapshot, file or point behind, a
# locked, damaged or foreign repository is refused, and the exit codes.
#
# Disks: 0: origin (64M)  1: storage block device (1G)  2: repository (1G)
#
# "COND && tap OK || tap FAIL" is safe here: tap OK always succeeds.
# cleanup runs from the EXIT trap.
# shellcheck disable=SC2015,SC2317
set -u

repo=${VSS_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
export PATH=$repo/build/bin:$PATH
agent=${VSS_AGENT:-$repo/build/bin/vss-backup-agent}
read -r -a disks <<<"${VSS_DISKS:-}"
tap_program=vss-backup-agent
# shellcheck source=selftests/tap.sh
. "$repo/selftests/tap.sh"
INCREMENTALS=5
mnt=$(mktemp -d)
writer=
loop=

# field REPO N KEY: a value of point N in REPO's catalog.
field() {
	awk -v n="$2" -v key="$3=" '$1 == "point" && $2 == n {
		for (i = 4; i <= NF; i++) if (index($i, key) == 1) print substr($i, length(key) + 1) }' \
		"$1/catalog"
}
kind() { awk -v n="$2" '$1 == "point" && $2 == n { print $3 }' "$1/catalog"; }
points() { grep -c '^point ' "$1/catalog" 2>/dev/null; }
snapshots() { vssctl --json list 2>/dev/null | jq length; }

# Random writes of 512 bytes to 64 KiB, sector-aligned, fresh data each,
# until stopped; stop_writer says how many it made. fio runs in a process
# group of its own, and only counts as started once it forked its job: a
# SIGINT that comes before is lost on the job, which would write on.
start_writer() {
	setsid fio --name=writer --filename="$1" --rw=randwrite --bsrange=512-64k \
		--blockalign=512 --direct=1 --ioengine=psync --refill_buffers \
		--randrepeat=0 --rate=4m --time_based --runtime=3600 \
		--output-format=json --output="$mnt/fio.out" >/dev/null 2>&1 &
	writer=$!
	for _ in $(seq 300); do
		pgrep -P "$writer" >/dev/null && return 0
		sleep 0.1
	done
	echo "# writer: fio started no job in 30 s"
}
stop_writer() {
	[ -n "$writer" ] || return 0
	kill -INT -- "-$writer" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$writer" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$writer" 2>/dev/null; then
		echo "# writer: fio did not stop on SIGINT in 10 s; killed"
		kill -KILL -- "-$writer" 2>/dev/null
	fi
	wait "$writer" 2>/dev/null
	writer=
	# fio says why it stopped before its JSON
	sed -n '/^{/,$p' "$mnt/fio.out" 2>/dev/null |
		jq -r '.jobs[0].write | "# writer: \(.total_ios) writes, \(.io_kbytes) KiB"' 2>/dev/null
	rm -f "$mnt/fio.out"
}

# restore_and_compare REPO N WHAT: point N restored equals its kept image.
restore_and_compare() {
	local r=$1 p=$2 image rc
	image=/dev/$(field "$r" "$p" image)
	"$agent" restore "$r" "$p" "$mnt/restored" >"$out" 2>"$err"
	rc=$?
	if [ "$rc" != 0 ]; then
		tap FAIL "point $p ($(kind "$r" "$p")) restores" "exit $rc"
	elif [ ! -b "$image" ]; then
		tap FAIL "point $p: its kept image $image is there"
	elif cmp "$mnt/restored" "$image" >"$out" 2>&1; then
		tap OK "point $p ($(kind "$r" "$p")) restores bit-exact to $image"
	else
		tap FAIL "point $p ($(kind "$r" "$p")) restores bit-exact to $image" "$(head -c 300 "$out")"
	fi
	rm -f "$mnt/restored"
}

# flip_last_byte FILE: the last byte made different.
flip_last_byte() {
	local size byte
	size=$(stat -c %s "$1")
	byte=$(od -An -tu1 -j $((size - 1)) -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf %03o $(((byte + 1) % 256)))" |
		dd of="$1" bs=1 seek=$((size - 1)) conv=notrunc status=none
}

cleanup() {
	stop_writer
	vssctl delete --all --force >/dev/null 2>&1
	[ -z "${disks[0]:-}" ] || vssctl untrack "${disks[0]}" >/dev/null 2>&1
	if [ -n "$loop" ]; then
		vssctl untrack "$loop" >/dev/null 2>&1
		losetup -d "$loop"
	fi
	umount "$mnt" 2>/dev/null
	rm -rf "$out" "$err" "$mnt" /tmp/vss-agent-loop.img
}

if [ "$(id -u)" != 0 ] || [ ${#disks[@]} -lt 3 ]; then
	echo "1..0 # SKIP needs root and three scratch disks (run under scripts/vm-run)"
	exit 0
fi
if ! command -v fio >/dev/null || [ ! -x "$agent" ]; then
	echo "1..0 # SKIP needs fio and $agent (make tools)"
	exit 0
fi
trap cleanup EXIT
dev=${disks[0]} store=${disks[1]}
mkfs.ext4 -q -F "${disks[2]}" && mount "${disks[2]}" "$mnt" || exit 1
R=$mnt/repo

# --- a full backup and incrementals while the device is written -------------
dd if=/dev/urandom of="$dev" bs=1M oflag=direct status=none 2>/dev/null
start_writer "$dev"
sleep 1
kill -0 "$writer" 2>/dev/null && tap OK "the writer is rewriting $dev" ||
	tap FAIL "the writer is rewriting $dev"
expect 0 "full DEV REPO --storage --keep" "$agent" full "$dev" "$R" --storage "$store" --keep
[ "$(points "$R")" = 1 ] && [ "$(kind "$R" 0)" = full ] && [ "$(field "$R" 0 cause)" = requested ] &&
	tap OK "point 0 is a full backup" || tap FAIL "point 0 is a full backup" "$(cat "$R/catalog")"
gen=$(vssctl --json cbt info "$dev" | jq -r .generation)
[ "$(field "$R" 0 cbt)" = "$gen:1" ] &&
	tap OK "its snapshot started tracking; the catalog has its point GEN:1" ||
	tap FAIL "its snapshot started tracking; the catalog has its point GEN:1" "$(field "$R" 0 cbt) vs $gen"
for i in $(seq 1 $INCREMENTALS); do
	sleep 1
	expect 0 "incr $i" "$agent" incr "$dev" "$R" --keep
	if [ "$(kind "$R" "$i")" = incr ] && [ "$(field "$R" "$i" extents)" -gt 0 ] &&
		[ "$(field "$R" "$i" cbt)" = "$gen:$((i + 1))" ]; then
		tap OK "point $i is an increment of $(field "$R" "$i" extents) extents, at point $gen:$((i + 1))"
	else
		tap FAIL "point $i is an increment with the writer's changes" "$(grep "^point $i " "$R/catalog")"
	fi
done

# --- a new generation: the next incr is a full backup, saying why -------------
vssctl untrack "$dev" >/dev/null && vssctl track "$dev" >/dev/null
sleep 1
N=$((INCREMENTALS + 1))
expect 0 "incr after untrack + track" "$agent" incr "$dev" "$R" --keep
grep -q "taking a full backup instead of an incremental: .*new generation" "$out" &&
	tap OK "... takes a full backup and says why" ||
	tap FAIL "... takes a full backup and says why" "$(cat "$out")"
[ "$(kind "$R" $N)" = full ] && [ "$(field "$R" $N cause)" = new-generation ] &&
	tap OK "... recorded as a full backup (cause new-generation)" ||
	tap FAIL "... recorded as a full backup (cause new-generation)" "$(grep "^point $N " "$R/catalog")"
sleep 1
expect 0 "incr on the new chain" "$agent" incr "$dev" "$R" --keep
[ "$(kind "$R" $((N + 1)))" = incr ] && tap OK "... is an increment again" ||
	tap FAIL "... is an increment again"
stop_writer
last=$((N + 1))

# --- every point, restored -------------------------------------------------------
expect 0 "list" "$agent" list "$R"
[ "$(grep -cE '^[0-9]+ +(full|incr) ' "$out")" = $((last + 1)) ] &&
	tap OK "... shows $((last + 1)) points" || tap FAIL "... shows $((last + 1)) points" "$(cat "$out")"
for p in $(seq 0 $last); do
	restore_and_compare "$R" "$p"
done
for p in 0 $N; do
	image=/dev/$(field "$R" "$p" image)
	[ "$(sha256sum <"$image" | cut -d' ' -f1)" = "$(field "$R" "$p" sha256)" ] &&
		tap OK "the checksum of full backup $p is that of its image" ||
		tap FAIL "the checksum of full backup $p is that of its image"
done
mismatch=
for p in $(seq 0 $last); do
	[ "$(vssctl --json show "$(field "$R" "$p" snapshot)" | jq -r .cbt_point)" = \
		"$(field "$R" "$p" cbt)" ] || mismatch="$mismatch $p"
done
[ -z "$mismatch" ] && tap OK "each point records its snapshot's changed-block point" ||
	tap FAIL "each point records its snapshot's changed-block point" "points$mismatch"
expect 0 "restore the newest point into a new directory's file" \
	"$agent" restore "$R" $last "$mnt/restored-last"
[ "$(stat -c %a "$mnt/restored-last")" = 600 ] && [ -z "$(find "$mnt" -name '.tmp-*')" ] &&
	tap OK "... mode 0600, no temporary file left" || tap FAIL "... mode 0600, no temporary file left"
rm -f "$mnt/restored-last"

# --- a resize: a new generation, so a full backup, of the new size ---------------
modprobe loop
truncate -s 32M /tmp/vss-agent-loop.img
loop=$(losetup -f --show /tmp/vss-agent-loop.img)
dd if=/dev/urandom of="$loop" bs=1M oflag=direct status=none 2>/dev/null
R2=$mnt/loop-repo
expect 0 "full of a loop device, storage by default in the repository" "$agent" full "$loop" "$R2"
[ "$(snapshots)" = $((last + 1)) ] && tap OK "... its snapshot is deleted" ||
	tap FAIL "... its snapshot is deleted" "$(snapshots) snapshots"
cp --sparse=always /tmp/vss-agent-loop.img "$mnt/loop-at-0"
truncate -s 40M /tmp/vss-agent-loop.img
losetup -c "$loop"
expect 0 "incr after the device grew" "$agent" incr "$loop" "$R2" --keep
grep -q "full backup instead of an incremental" "$out" && [ "$(kind "$R2" 1)" = full ] &&
	[ "$(field "$R2" 1 size)" = $((40 << 20)) ] &&
	tap OK "... a full backup of the new size, saying why" ||
	tap FAIL "... a full backup of the new size, saying why" "$(cat "$out")"
restore_and_compare "$R2" 1
expect 0 "the point before the resize restores" "$agent" restore "$R2" 0 "$mnt/restored"
cmp "$mnt/restored" "$mnt/loop-at-0" >/dev/null 2>&1 && tap OK "... as the device was" ||
	tap FAIL "... as the device was"
rm -f "$mnt/restored" "$mnt/loop-at-0"
vssctl delete --all --force >/dev/null 2>&1
vssctl untrack "$loop" >/dev/null 2>&1
losetup -d "$loop"
loop=
rm -f /tmp/vss-agent-loop.img

# --- failures: nothing recorded, nothing left behind --------------------------
vssctl delete --all >/dev/null 2>&1
before=$(points "$R")
start_writer "$dev"
"$agent" full "$dev" "$R" >"$out" 2>"$err" &
pid=$!
# Stopped once it is copying: its temporary file is there.
for _ in $(seq 400); do
	[ -n "$(find "$R" -name '.tmp-point-*')" ] && break
	sleep 0.05
done
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
stop_writer
if [ "$rc" = 0 ]; then
	skip "a backup stopped by SIGTERM: it was done before the signal came"
	skip "... leaves nothing behind"
	before=$(points "$R")
	vssctl delete --all >/dev/null 2>&1
else
	[ "$rc" = 1 ] && grep -q 'terminated; nothing recorded' "$err" &&
		tap OK "a backup stopped by SIGTERM fails, saying so" ||
		tap FAIL "a backup stopped by SIGTERM fails, saying so" "exit $rc"
	[ "$(points "$R")" = "$before" ] && [ "$(snapshots)" = 0 ] &&
		[ -z "$(find "$R" -name '.tmp-*')" ] &&
		[ ! -e "$R/point-$(printf %06d "$before").full" ] &&
		tap OK "... leaves no point, snapshot, or file behind" ||
		tap FAIL "... leaves no point, snapshot, or file behind" "$(ls -a "$R"; vssctl list)"
fi

exec 8<"$R"
flock -x 8
expect_error 7 'in use' "a repository locked by another agent: exit 7" "$agent" incr "$dev" "$R"
expect_error 7 'in use' "... also for restore" "$agent" restore "$R" 0 "$mnt/x"
flock -u 8
exec 8<&-
[ "$(snapshots)" = 0 ] && tap OK "... and no snapshot was taken" || tap FAIL "... and no snapshot was taken"

# A copy of the repository, sharing all but what is damaged (sed -i
# replaces the catalog rather than writing into it).
cp -al "$R" "$mnt/damaged"
cp --remove-destination "$R/point-000002.incr" "$mnt/damaged/"
flip_last_byte "$mnt/damaged/point-000002.incr"
expect_error 6 'point-000002.incr: checksum mismatch' "restore from a damaged increment: exit 6" \
	"$agent" restore "$mnt/damaged" 3 "$mnt/x"
[ ! -e "$mnt/x" ] && [ -z "$(find "$mnt" -maxdepth 1 -name '.tmp-*')" ] &&
	tap OK "... and writes nothing" || tap FAIL "... and writes nothing"
expect 0 "the points before it still restore" "$agent" restore "$mnt/damaged" 1 "$mnt/x"
rm -f "$mnt/x"
sed -i 's|^device .*|&x|' "$mnt/damaged/catalog"
expect_error 6 'catalog: checksum mismatch' "a damaged catalog: exit 6" "$agent" list "$mnt/damaged"
rm -rf "$mnt/damaged"

expect_error 2 "holds backups of $dev, not of $store" "incr of another device: exit 2" \
	"$agent" incr "$store" "$R"
expect_error 5 'no such repository' "incr without a repository: exit 5" \
	"$agent" incr "$dev" "$mnt/none"
mkdir "$mnt/other" && touch "$mnt/other/precious"
expect_error 2 'not a vss-backup-agent repository' "full into a directory of other files: exit 2" \
	"$agent" full "$dev" "$mnt/other"
expect_error 5 "no point $(points "$R")" "restore of a point not taken: exit 5" \
	"$agent" restore "$R" "$(points "$R")" "$mnt/x"
expect_error 2 'not a block device' "full of a file: exit 2" "$agent" full /etc/passwd "$mnt/x"
expect_error 2 'not a regular file' "restore onto a device: exit 2" \
	"$agent" restore "$R" 0 "$store"
expect_error 2 'storage limit' "a bad storage limit: exit 2" \
	"$agent" incr "$dev" "$R" --storage-limit 12Q
expect_error 2 'unknown command' "an unknown command: exit 2" "$agent" frobnicate
expect_error 2 'full and incr only' "--keep for list: exit 2" "$agent" list "$R" --keep
expect 0 "--help" "$agent" --help
grep -q '^Exit status' "$out" && tap OK "... documents the exit status" ||
	tap FAIL "... documents the exit status"
expect_error 4 'permission denied' "incr as nobody: exit 4" \
	setpriv --reuid 65534 --regid 65534 --clear-groups "$agent" incr "$dev" "$R"
[ "$(points "$R")" = "$before" ] && [ "$(snapshots)" = 0 ] &&
	tap OK "none of that changed the repository or took a snapshot" ||
	tap FAIL "none of that changed the repository or took a snapshot"

# --- the end: untracked, the module can go --------------------------------------
expect 0 "untrack" vssctl untrack "$dev"
if rmmod vss 2>"$err"; then
	tap OK "rmmod once nothing is tracked"
	expect_error 3 'not loaded' "incr without the module: exit 3" "$agent" incr "$dev" "$R"
	insmod "$repo/build/$VSS_KVER/vss.ko"
else
	tap FAIL "rmmod once nothing is tracked"
fi

echo "1..$n"
exit $((failures > 0))
