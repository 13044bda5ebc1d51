#!/bin/bash
# Same-volume stores across an unclean stop and a module reload (issue 19,
# items 5 and 6): run on the host, it boots the test VM twice on the same
# two disk images, one ext4 and one XFS, each holding its own store.
#
#   boot 1  a set on each disk with its store in a directory of that
#           disk's filesystem, data overwritten through it (copies in the
#           store), then an immediate reboot (sysrq b): the sets are never
#           deleted, the store files stay behind
#   boot 2  the store files are there, unpinned; the data and fsck are
#           clean; the next create in that directory removes them. Then
#           a store released while its filesystem is frozen (its file
#           stays), a module reload, and the next create removes that too
#
#   VSS_KERNEL=6.1 selftests/vss_samevol_reboot_test.sh
#
# TAP on stdout; the guests' kernel logs go to $VSS_RESULTS (default
# results/samevol-reboot-KERNEL).
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kernel=${VSS_KERNEL:-6.12}
out=${VSS_RESULTS:-$repo/results/samevol-reboot-$kernel}
rm -rf "$out"
mkdir -p "$out/state"
ext4_img=$(mktemp --suffix=.raw "${TMPDIR:-/tmp}/vss-svreboot.XXXXXX")
xfs_img=$(mktemp --suffix=.raw "${TMPDIR:-/tmp}/vss-svreboot.XXXXXX")
trap 'rm -f "$ext4_img" "$xfs_img"' EXIT
truncate -s 512M "$ext4_img" "$xfs_img"

# shellcheck source=selftests/host_tap.sh
. "$repo/selftests/host_tap.sh"

# boot N SCRIPT: SCRIPT in a VM on both images, $ext4 and $xfs naming them.
# shellcheck disable=SC2016 # $VSS_DISKS is the guest's
boot() { boot_on "$1" 'set -- $VSS_DISKS; ext4=$1 xfs=$2' "$2" --disk "$ext4_img" --disk "$xfs_img"; }

echo "TAP version 13"
echo "1..11"

# The state goes to the checkout (9p), synced, before the reboot loses the
# guest's own output.
boot 1 '
note() { echo "$1" >>"$STATE/boot1"; sync -f "$STATE/boot1"; }
mkfs.ext4 -q -F "$ext4" && mkfs.xfs -q -f "$xfs" || exit 1
for fs in ext4 xfs; do
	dev=${!fs} mnt=/tmp/$fs
	mkdir -p "$mnt" && mount "$dev" "$mnt" && mkdir "$mnt/st" || exit 1
	dd if=/dev/urandom of="$mnt/data" bs=1M count=16 conv=fsync status=none || exit 1
	vssctl create --no-writers --storage "$mnt/st" --storage-limit 48M "$dev" >"$STATE/create-$fs" 2>&1 || exit 1
	note "seg_$fs=$(ls "$mnt/st/.vss-store" | head -n1)"
	dd if=/dev/urandom of="$mnt/data" bs=1M count=8 conv=notrunc,fsync status=none || exit 1
	note "sum_$fs=$(sha256sum <"$mnt/data" | cut -d" " -f1)"
done
note ready=1
echo b >/proc/sysrq-trigger
sleep 30
'
rc=$?
seg_ext4=$(value "$out/state/boot1" seg_ext4)
seg_xfs=$(value "$out/state/boot1" seg_xfs)
[ "$(value "$out/state/boot1" ready)" = 1 ] && [ -n "$seg_ext4" ] && [ -n "$seg_xfs" ] &&
	tap ok "boot 1: a same-volume set on ext4 and on XFS, written, then sysrq b" ||
	tap fail "boot 1: a same-volume set on ext4 and on XFS, written, then sysrq b (exit $rc, see $out/boot1.err, $out/state)"
# The command never finishes (rc 125); the kernel log must still be clean.
"$repo/scripts/check-kernel-log" "$out/boot1.dmesg" >"$out/boot1.problems" 2>&1 &&
	tap ok "boot 1: the kernel log up to the reboot is clean" ||
	tap fail "boot 1: the kernel log up to the reboot is clean (see $out/boot1.problems)"

boot 2 '
fsck_of() { case $1 in ext4) e2fsck -fn "$2" ;; xfs) xfs_repair -n "$2" ;; esac >/dev/null 2>&1; }
for fs in ext4 xfs; do
	dev=${!fs} mnt=/tmp/$fs
	seg=$(sed -n "s/^seg_$fs=//p" "$STATE/boot1")
	mkdir -p "$mnt" && mount "$dev" "$mnt" || { echo "mount_$fs=failed"; continue; }
	test -f "$mnt/st/.vss-store/$seg" && echo "left_$fs=1"
	# Unpinned: the filesystem lets its owner write it again.
	dd if=/dev/zero of="$mnt/st/.vss-store/$seg" bs=4k count=1 conv=notrunc status=none 2>/dev/null && echo "unpinned_$fs=1"
	echo "sum_$fs=$(sha256sum <"$mnt/data" | cut -d" " -f1)"
	umount "$mnt"
	fsck_of $fs "$dev"; echo "fsck1_$fs=$?"
	mount "$dev" "$mnt" || continue
	vssctl create --no-writers --storage "$mnt/st" --storage-limit 16M "$dev" >/dev/null || echo "create_$fs=failed"
	test -e "$mnt/st/.vss-store/$seg" || echo "removed_$fs=1"
	dmesg | grep -q "removed the leftover store file .*$seg" && echo "logged_$fs=1"
	# Released while its filesystem is frozen: the file stays, unpinned.
	now=$(ls "$mnt/st/.vss-store" | head -n1)
	fsfreeze -f "$mnt" && timeout 60 vssctl delete --all >/dev/null; echo "frozen_delete_$fs=$?"
	fsfreeze -u "$mnt"
	test -f "$mnt/st/.vss-store/$now" && echo "frozen_left_$fs=1"
	echo "frozen_seg_$fs=$now"
done
# A module reload between the release and the next create.
# Snapshots track their devices (changed blocks), and tracking holds the
# module: untrack first. (udev may still hold a deleted image for a
# moment: retry for up to 10 s.)
vssctl untrack "$ext4" >/dev/null 2>&1; vssctl untrack "$xfs" >/dev/null 2>&1
for i in $(seq 20); do rmmod vss 2>/dev/null && break; sleep 0.5; done
! lsmod | grep -qw "^vss" && insmod "$VSS_REPO/build/$VSS_KVER/vss.ko" && echo reloaded=1
for fs in ext4 xfs; do
	dev=${!fs} mnt=/tmp/$fs
	vssctl create --no-writers --storage "$mnt/st" --storage-limit 16M "$dev" >/dev/null || echo "create2_$fs=failed"
	vssctl delete --all >/dev/null || echo "delete2_$fs=failed"
	test -z "$(ls -A "$mnt/st/.vss-store")" && echo "empty_$fs=1"
	umount "$mnt"
	fsck_of $fs "$dev"; echo "fsck2_$fs=$?"
done
'
rc=$?
b2=$out/boot2.out
for fs in ext4 xfs; do
	[ "$(value "$b2" left_$fs)" = 1 ] && [ "$(value "$b2" unpinned_$fs)" = 1 ] &&
		tap ok "boot 2 ($fs): the crashed store's file is there, unpinned" ||
		tap fail "boot 2 ($fs): the crashed store's file is there, unpinned (see $b2)"
	[ "$(value "$b2" sum_$fs)" = "$(value "$out/state/boot1" sum_$fs)" ] && [ "$(value "$b2" fsck1_$fs)" = 0 ] &&
		tap ok "boot 2 ($fs): the origin's data is whole and fsck is clean" ||
		tap fail "boot 2 ($fs): the origin's data is whole and fsck is clean (fsck exit $(value "$b2" fsck1_$fs))"
	[ "$(value "$b2" removed_$fs)" = 1 ] && [ "$(value "$b2" logged_$fs)" = 1 ] &&
		tap ok "boot 2 ($fs): the next create removed it, with a log line" ||
		tap fail "boot 2 ($fs): the next create removed it, with a log line (see $b2)"
	[ "$(value "$b2" frozen_delete_$fs)" = 0 ] && [ "$(value "$b2" frozen_left_$fs)" = 1 ] &&
		[ "$(value "$b2" reloaded)" = 1 ] && [ "$(value "$b2" empty_$fs)" = 1 ] &&
		[ "$(value "$b2" fsck2_$fs)" = 0 ] &&
		tap ok "boot 2 ($fs): released while frozen, reloaded, removed by the next create, fsck clean" ||
		tap fail "boot 2 ($fs): released while frozen, reloaded, removed by the next create, fsck clean (see $b2)"
done

# vm-run exits 125 when a guest's kernel log shows a warning, an oops, a
# lockdep report or a hung task, whatever the command returned.
[ "$rc" = 0 ] &&
	tap ok "boot 2: the command succeeded and the kernel log is clean" ||
	tap fail "boot 2: the command succeeded and the kernel log is clean (exit $rc, see $out/boot2.err)"
[ $failed = 0 ]
