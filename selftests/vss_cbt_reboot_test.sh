#!/bin/bash
# Changed-block maps across reboots, as vss-cbt.service handles them: run
# on the host, it boots the test VM several times on the same disk image
# and keeps the saved maps in the checkout, which the guest can write.
#
#   boot 1  track the disk, take a snapshot (point P), write, list the
#           changes since P, save the map (the disk is unused: a clean
#           shutdown after the filesystems are unmounted)
#   boot 2  restore before anything writes: the same generation, the same
#           changes since P; write on, save again
#   boot 3  write to the disk before restoring (a boot that wrote before
#           vss was back): a new generation, and P is refused (exit 9)
#   boot 4  no saved map at all (an unclean stop): the disk is untracked,
#           tracking it again starts a new generation
#
#   VSS_KERNEL=6.1 selftests/vss_cbt_reboot_test.sh
#
# TAP on stdout; the guests' kernel logs go to $VSS_RESULTS (default
# results/reboot) next to the saved maps.
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kernel=${VSS_KERNEL:-6.12}
out=${VSS_RESULTS:-$repo/results/reboot-$kernel}
rm -rf "$out"
mkdir -p "$out/state"
img=$(mktemp --suffix=.raw "${TMPDIR:-/tmp}/vss-reboot.XXXXXX")
trap 'rm -f "$img"' EXIT
truncate -s 64M "$img"

# shellcheck source=selftests/host_tap.sh
. "$repo/selftests/host_tap.sh"

# boot N SCRIPT: SCRIPT in a VM on the image, $dev naming it.
# shellcheck disable=SC2016 # $VSS_DISKS is the guest's
boot() { boot_on "$1" 'dev=${VSS_DISKS%% *}' "$2" --disk "$img"; }

echo "TAP version 13"
echo "1..10"

boot 1 '
vssctl track "$dev" >/dev/null || exit 1
snap=$(vssctl --json create --no-freeze --storage /tmp --storage-limit 16M "$dev") || exit 1
echo "point=$(echo "$snap" | jq -r ".snapshots[0].cbt_point")"
vssctl delete --all >/dev/null || exit 1
dd if=/dev/urandom of="$dev" bs=4k seek=100 count=3 oflag=direct status=none
dd if=/dev/urandom of="$dev" bs=4k seek=9000 count=1 oflag=direct status=none
p=$(vssctl --json create --no-freeze --storage /tmp --storage-limit 16M "$dev" | jq -r ".snapshots[0].cbt_point")
echo "point2=$p"
vssctl delete --all >/dev/null
echo "changes=$(vssctl --json cbt changes "$dev" --from "${p%%:*}:1" | jq -c "[.extents[] | [.offset, .length]]")"
vssctl cbt save --dir "$STATE" "$dev" || exit 1
'
rc=$?
point=$(value "$out/boot1.out" point)
changes=$(value "$out/boot1.out" changes)
[ $rc = 0 ] && [ -n "$point" ] && ls "$out"/state/*.cbt >/dev/null 2>&1
[ $? = 0 ] && tap ok "boot 1: tracked, written, map saved" ||
	tap fail "boot 1: tracked, written, map saved (exit $rc, see $out/boot1.err)"
[ "$changes" = "[[409600,12288],[36864000,4096]]" ] &&
	tap ok "boot 1: changes are the blocks written" ||
	tap fail "boot 1: changes are the blocks written (got $changes)"

boot 2 '
vssctl --json cbt restore --dir "$STATE" >/tmp/restore.json 2>&1; rc=$?
cat /tmp/restore.json
echo "verdict=$(jq -r ".restored[0].verdict" /tmp/restore.json 2>/dev/null)"
echo "generation=$(vssctl --json cbt info "$dev" | jq -r .generation)"
echo "changes=$(vssctl --json cbt changes "$dev" --from "'"${point%%:*}"':1" | jq -c "[.extents[] | [.offset, .length]]")"
dd if=/dev/urandom of="$dev" bs=4k seek=200 count=1 oflag=direct status=none
vssctl cbt save --dir "$STATE" "$dev" || exit 1
exit $rc
'
rc=$?
verdict=$(value "$out/boot2.out" verdict)
[ $rc = 0 ] && [ "$verdict" = continued ] &&
	tap ok "boot 2: the saved generation goes on after a clean reboot" ||
	tap fail "boot 2: the saved generation goes on after a clean reboot (exit $rc, verdict '$verdict')"
[ "$(value "$out/boot2.out" generation)" = "${point%%:*}" ] &&
	tap ok "boot 2: same generation as boot 1" ||
	tap fail "boot 2: same generation as boot 1"
[ "$(value "$out/boot2.out" changes)" = "$changes" ] &&
	tap ok "boot 2: same changes as boot 1" ||
	tap fail "boot 2: same changes as boot 1 (got $(value "$out/boot2.out" changes))"
ls "$out"/state/*.cbt >/dev/null 2>&1 &&
	tap ok "boot 2: map saved again" || tap fail "boot 2: map saved again"

boot 3 '
dd if=/dev/urandom of="$dev" bs=4k seek=300 count=1 oflag=direct status=none
vssctl --json cbt restore --dir "$STATE" >/tmp/restore.json 2>&1
cat /tmp/restore.json
echo "verdict=$(jq -r ".restored[0].verdict" /tmp/restore.json 2>/dev/null)"
vssctl cbt changes "$dev" --from "'"$point"'" >/dev/null 2>&1
echo "old_point_exit=$?"
vssctl untrack "$dev"
'
[ "$(value "$out/boot3.out" verdict)" = new-generation ] &&
	tap ok "boot 3: a write before the restore gives a new generation" ||
	tap fail "boot 3: a write before the restore gives a new generation (verdict '$(value "$out/boot3.out" verdict)')"
[ "$(value "$out/boot3.out" old_point_exit)" = 9 ] &&
	tap ok "boot 3: the old point asks for a full backup (exit 9)" ||
	tap fail "boot 3: the old point asks for a full backup (exit $(value "$out/boot3.out" old_point_exit))"

boot 4 '
vssctl cbt restore --dir "$STATE" >/dev/null 2>&1
vssctl cbt info "$dev" >/dev/null 2>&1
echo "info_exit=$?"
vssctl track "$dev" >/dev/null
vssctl cbt changes "$dev" --from "'"$point"'" >/dev/null 2>&1
echo "old_point_exit=$?"
vssctl untrack "$dev"
'
[ "$(value "$out/boot4.out" info_exit)" = 5 ] &&
	[ "$(value "$out/boot4.out" old_point_exit)" = 9 ] &&
	tap ok "boot 4: no saved map: untracked, then a new generation" ||
	tap fail "boot 4: no saved map: untracked, then a new generation (info exit $(value "$out/boot4.out" info_exit), old point exit $(value "$out/boot4.out" old_point_exit))"

# vm-run exits 125 when a guest's kernel log shows a warning, an oops, a
# lockdep report or a hung task, whatever the command returned.
! grep -qx 125 "$out"/boot*.rc &&
	tap ok "guest kernel logs are clean" ||
	tap fail "guest kernel logs are clean (see $out/boot*.err)"
[ $failed = 0 ]
