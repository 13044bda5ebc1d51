#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# udev/90-vss.rules under a real systemd-udevd in the VM: an image gets
# /dev/vss/<origin>@<n> and /dev/disk/by-id/vss-<snapshot id>, and never a
# /dev/disk/by-uuid or by-label link, although it carries its origin's ext4
# UUID and label: not on "add", not on "change", not even when a local rule
# runs blkid on every block device. udev never holds an image open, so
# deleting works while it runs.
#
# The VM has no udevd of its own: this test starts the host's (the guest
# sees the host root) with the rules from this checkout in /run/udev/rules.d,
# and stops it at the end. systemd's tools refuse to act in a chroot, which
# is how the VM runs commands; SYSTEMD_IGNORE_CHROOT=1 lets them.
#
# Disks: 0: origin (32M)  1: storage block device (64M)
# Functions below run through check() or the EXIT trap.
# shellcheck disable=SC2317
set -u

repo=${VSS_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
export PATH=$repo/build/bin:$PATH
export SYSTEMD_IGNORE_CHROOT=1
read -r -a disks <<<"${VSS_DISKS:-}"
# shellcheck source=selftests/tap.sh
. "$repo/selftests/tap.sh"
rules=/run/udev/rules.d
uuid=7c1d5a9e-4f0b-4a51-9d0e-5a5b1c2d3e4f
label=vss-udev-test

check() { # check NAME CMD...: OK if CMD succeeds
	local name=$1
	shift
	if "$@" >"$out" 2>"$err"; then tap OK "$name"; else tap FAIL "$name" "$(head -c 600 "$err" "$out" | tr '\n' ' ')"; fi
}

udevd=
for f in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd; do
	[ -x "$f" ] && { udevd=$f; break; }
done
if [ "$(id -u)" != 0 ] || [ ${#disks[@]} -lt 2 ]; then
	echo "1..0 # SKIP needs root and two scratch disks (run under scripts/vm-run)"
	exit 0
fi
if [ -z "$udevd" ] || ! command -v udevadm >/dev/null; then
	echo "1..0 # SKIP systemd-udevd is not installed (scripts/deps.sh installs udev)"
	exit 0
fi
if [ -e /run/udev/control ]; then
	echo "1..0 # SKIP a udevd is already running here"
	exit 0
fi
origin=${disks[0]} store=${disks[1]}
name=${origin##*/}

settle() { udevadm settle --timeout=60; }
cleanup() {
	vssctl delete --all --force >/dev/null 2>&1
	udevadm control --exit >/dev/null 2>&1
	rm -f "$rules/90-vss.rules" "$rules/61-vss-test-blkid.rules" "$rules/95-vss-test-blkid.rules" "$out" "$err"
}
trap cleanup EXIT

# resolve LINK: the device node a link resolves to, or "".
resolve() { if [ -L "$1" ]; then readlink -f "$1"; fi; }

# links_to DEV: every /dev/disk link that resolves to DEV.
links_to() {
	local l
	for l in /dev/disk/*/*; do
		[ "$(resolve "$l")" = "$1" ] && echo "$l"
	done
	return 0
}

# only_vss_links IMAGE ID: the image's only /dev/disk link is by-id/vss-ID.
only_vss_links() {
	local got
	got=$(links_to "$1" | tr '\n' ' ')
	[ "$got" = "/dev/disk/by-id/vss-$2 " ] || { echo "links to $1: $got" >&2; return 1; }
}

# origin_owns_fs_links: by-uuid and by-label name the origin, nothing else.
origin_owns_fs_links() {
	if [ "$(resolve "/dev/disk/by-uuid/$uuid")" != "$origin" ] ||
		[ "$(resolve "/dev/disk/by-label/$label")" != "$origin" ]; then
		ls -l /dev/disk/by-uuid /dev/disk/by-label >&2
		return 1
	fi
}

# no_fs_claims IMAGE...: no image asks udev for a by-uuid or by-label
# link (of several claimants, udev links the one of highest priority, and
# among equals whichever it finds first).
no_fs_claims() {
	local dev
	for dev; do
		! udevadm info --query=symlink --name="$dev" | grep -E 'disk/by-(uuid|label)/' || return 1
	done
}

no_fs_ids() { ! udevadm info --query=property --name="$1" | grep -E '^ID_FS_(UUID|LABEL|TYPE)='; }

create() { # create: sets image, snap_id
	vssctl --json create --storage "$store" --no-freeze "$origin" >"$out" 2>"$err" || return 1
	snap_id=$(jq -r '.snapshots[0].id' "$out")
	image=$(jq -r '.snapshots[0].image.path // ("/dev/" + .snapshots[0].image.name)' "$out")
	index=$(jq -r '.snapshots[0].index' "$out")
	settle
}

mkdir -p "$rules"
cp "$repo/udev/90-vss.rules" "$rules/"
"$udevd" --daemon --resolve-names=never >"$out" 2>&1
udevadm trigger --action=add --subsystem-match=block
settle
check "udevd runs and names the scratch disks" test -L /dev/disk/by-id/virtio-vss-virtio0

mkfs.ext4 -q -F -U "$uuid" -L "$label" "$origin"
udevadm trigger --action=change "$origin"
settle
check "the origin's ext4 gets by-uuid and by-label links" origin_owns_fs_links

if create; then tap OK "create a snapshot"; else tap FAIL "create a snapshot" "$(cat "$err")"; fi
image1=$image id1=$snap_id
check "/dev/vss/$name@$index names the image" test "$(resolve "/dev/vss/$name@$index")" = "$image1"
check "/dev/disk/by-id/vss-<id> names the image" test "$(resolve "/dev/disk/by-id/vss-$id1")" = "$image1"
check "the image has no other /dev/disk link" only_vss_links "$image1" "$id1"
check "by-uuid and by-label still name the origin" origin_owns_fs_links
check "udev recorded no filesystem id for the image" no_fs_ids "$image1"
check "the image claims no by-uuid or by-label link" no_fs_claims "$image1"

udevadm trigger --action=change "$image1"
settle
check "after a change event: no by-uuid or by-label link to the image" only_vss_links "$image1" "$id1"

if create; then tap OK "create a second snapshot"; else tap FAIL "create a second snapshot" "$(cat "$err")"; fi
image2=$image id2=$snap_id index2=$index
check "a second snapshot is /dev/vss/$name@$index2, the first keeps its name" \
	test "$(resolve "/dev/vss/$name@$index2")" = "$image2" -a "$(resolve "/dev/vss/$name@1")" = "$image1"

# A local rule that runs blkid on every block device and links what it
# finds, as some administrators write: the vss rules must still keep the
# origin's names off the images.
cat >"$rules/61-vss-test-blkid.rules" <<'EOF'
SUBSYSTEM=="block", ACTION!="remove", IMPORT{builtin}="blkid"
SUBSYSTEM=="block", ENV{ID_FS_UUID_ENC}=="?*", SYMLINK+="disk/by-uuid/$env{ID_FS_UUID_ENC}"
SUBSYSTEM=="block", ENV{ID_FS_LABEL_ENC}=="?*", SYMLINK+="disk/by-label/$env{ID_FS_LABEL_ENC}"
EOF
udevadm control --reload
udevadm trigger --action=change "$origin"
settle
udevadm trigger --action=change "$image1"
udevadm trigger --action=change "$image2"
settle
check "with a local blkid rule: the images claim no by-uuid or by-label link" no_fs_claims "$image1" "$image2"
both_images_clean() { only_vss_links "$image1" "$id1" && only_vss_links "$image2" "$id2"; }
check "with a local blkid rule: no by-uuid or by-label link to an image" both_images_clean
check "with a local blkid rule: by-uuid and by-label name the origin" origin_owns_fs_links
rm -f "$rules/61-vss-test-blkid.rules"

# The same rule running after the vss rules cannot be undone by them; the
# images' low link priority leaves the names to the origin.
cat >"$rules/95-vss-test-blkid.rules" <<'EOF'
SUBSYSTEM=="block", ACTION!="remove", IMPORT{builtin}="blkid"
SUBSYSTEM=="block", ENV{ID_FS_UUID_ENC}=="?*", SYMLINK+="disk/by-uuid/$env{ID_FS_UUID_ENC}"
SUBSYSTEM=="block", ENV{ID_FS_LABEL_ENC}=="?*", SYMLINK+="disk/by-label/$env{ID_FS_LABEL_ENC}"
EOF
udevadm control --reload
udevadm trigger --action=change "$origin"
settle
udevadm trigger --action=change "$image1"
udevadm trigger --action=change "$image2"
settle
check "with a later local blkid rule: by-uuid and by-label name the origin" origin_owns_fs_links
rm -f "$rules/95-vss-test-blkid.rules"
udevadm control --reload
udevadm trigger --action=change "$image1"
udevadm trigger --action=change "$image2"
settle

vssctl delete "$id1" >"$out" 2>"$err"
check "delete the first snapshot while udevd runs" test $? = 0
settle
check "its /dev/vss and by-id links are gone" test ! -e "/dev/vss/$name@1" -a ! -e "/dev/disk/by-id/vss-$id1"
check "the second keeps its links" test "$(resolve "/dev/vss/$name@$index2")" = "$image2"

busy=0
for _ in 1 2 3 4 5; do
	create || busy=$((busy + 1))
	vssctl delete "$snap_id" >/dev/null 2>"$err" || { busy=$((busy + 1)); cat "$err" >&2; }
done
check "five create/delete rounds under udev: no EBUSY" test "$busy" = 0

vssctl delete --all >"$out" 2>"$err"
settle
no_vss_links() { ! compgen -G '/dev/vss/*' && ! compgen -G '/dev/disk/by-id/vss-*'; }
check "with no snapshot left, no vss link is left" no_vss_links
echo "1..$n"
exit $((failures > 0))
