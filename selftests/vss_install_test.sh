#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The packages, installed and used on a real Debian 12 system: run on the
# host, it builds the .debs of this tree (make deb) and of an older build
# of it, and boots the system image of scripts/system-image three times on
# one overlay (vm-run --system --keep-system), with systemd as PID 1 and
# udevd running. The guest steps are in vss_install_guest.sh:
#
#   boot 1  apt installs the older build (DKMS builds vss.ko in the guest,
#           vss-cbt.service loads it), upgrades to this one; snapshots of a
#           mounted data disk and of the root, udev links, bash completion,
#           the example agent built on libvss-dev; an LVM volume and an md
#           array that come up late at boot, tracked; systemctl reboot
#   boot 2  the reboot kept the maps (the shipped units' shutdown save and
#           boot restore); then the module file goes away; reboot
#   boot 3  vss-cbt.service fails and says why; apt remove refused while a
#           snapshot exists, then works and unloads nothing; purge leaves
#           nothing behind
#
#   VSS_KERNEL=6.1 selftests/vss_install_test.sh
#
# The upgrade from the older build runs on 6.12 only (VSS_INSTALL_UPGRADE=1
# asks for it on 6.1 too, =0 skips it): packaging does not depend on the
# kernel, and each DKMS build and depmod in the guest costs minutes under
# TCG.
#
# TAP on stdout; logs and the guests' kernel logs in $VSS_RESULTS (default
# results/install-<kernel>).
# shellcheck disable=SC2046 # lists of packages and paths split on purpose
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kernel=${VSS_KERNEL:-6.12}
out=${VSS_RESULTS:-$repo/results/install-$kernel}
rm -rf "$out"
mkdir -p "$out/state"
t0=$SECONDS

# shellcheck source=selftests/host_tap.sh
. "$repo/selftests/host_tap.sh"
bail() {
	tap fail "$1"
	echo "1..$n"
	exit 1
}

echo "TAP version 13"

# --- the packages: this tree and an older build of it -----------------------------
# Built once for both kernels: again only when a file of the tree is newer.
debs=$repo/build/deb-test
version=$(sed -n '1s/^vss (\([^)]*\)).*/\1/p' "$repo/debian/changelog")
prev_version=${version}~prev1
newest=$(cd "$repo" && git ls-files -co --exclude-standard -z 2>/dev/null |
	xargs -0 stat -c %Y 2>/dev/null | sort -n | tail -n1)
build_debs() {
	local dir=$1 v=$2 stamp=$1/.built
	if [ -f "$stamp" ] && [ "$(stat -c %Y "$stamp")" -ge "${newest:-0}" ] &&
		ls "$dir"/vss-tools_"$v"_*.deb >/dev/null 2>&1; then
		return 0
	fi
	rm -rf "$dir"
	DEB_BUILD_OPTIONS=nocheck VSS_DEB_OUT=$dir \
		VSS_DEB_VERSION=$([ "$v" = "$version" ] || echo "$v") \
		bash "$repo/scripts/build-deb" >"$out/deb-$v.log" 2>&1 || return 1
	touch "$stamp"
}
upgrade=${VSS_INSTALL_UPGRADE:-$([ "$kernel" = 6.12 ] && echo 1 || echo 0)}
tb=$SECONDS
mkdir -p "$debs"
(
	exec 9>"$debs/.lock"
	flock 9
	build_debs "$debs/cur" "$version" &&
		{ [ "$upgrade" = 0 ] || build_debs "$debs/prev" "$prev_version"; }
) || bail "make deb builds $version$([ "$upgrade" = 0 ] || echo " and $prev_version") (see $out/deb-*.log)"
tap ok "make deb builds $version$([ "$upgrade" = 0 ] || echo " and $prev_version"), lintian clean ($((SECONDS - tb))s)"

# --- the machine --------------------------------------------------------------------
ti=$SECONDS
overlay=$out/machine.qcow2
"$repo/scripts/system-image" --kernel "$kernel" --overlay "$overlay" >"$out/system-image.log" 2>&1 ||
	bail "the Debian 12 system image for $kernel (see $out/system-image.log)"
tap ok "the Debian 12 system image for $kernel ($((SECONDS - ti))s)"
disks=()
for d in data:256M pv:256M md1:128M md2:128M store:256M; do
	truncate -s "${d#*:}" "$out/${d%%:*}.raw"
	disks+=(--disk "$out/${d%%:*}.raw")
done

# boot N ARGS...: the guest step of boot N, its TAP lines renumbered here.
boot() {
	local nr=$1 rc tb=$SECONDS
	shift
	"$repo/scripts/vm-run" --quiet --kernel "$kernel" --system "$overlay" --keep-system \
		--no-module --mem 1536M "${disks[@]}" --log "$out/boot$nr.dmesg" -- \
		env STATE="$out/state" bash "$repo/selftests/vss_install_guest.sh" "boot$nr" "$@" \
		>"$out/boot$nr.out" 2>"$out/boot$nr.err"
	rc=$?
	echo "$rc" >"$out/boot$nr.rc"
	while IFS= read -r line; do
		case $line in
		"ok - "*) tap ok "boot $nr: ${line#ok - }" ;;
		"not ok - "*) tap fail "boot $nr: ${line#not ok - }" ;;
		"# "*) echo "$line" ;;
		esac
	done <"$out/boot$nr.out"
	if [ "$rc" = 0 ]; then
		tap ok "boot $nr ran to its end ($((SECONDS - tb))s)"
	else
		tap fail "boot $nr ran to its end (exit $rc; see $out/boot$nr.err)"
		sed 's/^/#   /' "$out/boot$nr.err" | tail -n 15
	fi
	return "$rc"
}

boot 1 "$debs/cur" $([ "$upgrade" = 0 ] || echo "$debs/prev") &&
	boot 2 &&
	boot 3 "$debs/cur"

# vm-run exits 125 when a guest's kernel log shows a warning, an oops, a
# lockdep report or a hung task, whatever the command returned.
if ! grep -qx 125 "$out"/boot*.rc; then
	tap ok "guest kernel logs are clean"
else
	tap fail "guest kernel logs are clean (see $out/boot*.err)"
fi
rm -f "$overlay" "$out"/*.raw
echo "# install test on $kernel took $((SECONDS - t0))s"
echo "1..$n"
[ $failed = 0 ]
