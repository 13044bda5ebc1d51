#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of vss_install_test.sh: one step per boot of a Debian 12
# system (vm-run --system), run as root by systemd once the boot reached
# multi-user.target. Prints "ok - ..." and "not ok - ..." lines that the
# host numbers into TAP; writes what the next boot must compare with into
# $STATE (a directory of the checkout, shared with the host).
#
#   vss_install_guest.sh boot1 CUR [PREV] install (PREV, then upgrade to CUR),
#                                         use, track, reboot
#   vss_install_guest.sh boot2            maps kept, module missing, reboot
#   vss_install_guest.sh boot3 CUR        the red unit, remove, purge
#
# CUR and PREV are directories of .deb files (this tree, and an older
# build of it). Disks, in $VSS_DISKS order: data (ext4), an LVM PV, two md
# members, and a block device for diff storage.
# shellcheck disable=SC2046 # lists of packages and paths split on purpose
set -u

step=$1
state=${STATE:?}
read -r data pv md1 md2 store <<<"$VSS_DISKS"
lv=/dev/vgvss/lv
md=/dev/md/vsstest
kver=$(uname -r)
export DEBIAN_FRONTEND=noninteractive

check() {
	local what=$1
	shift
	if "$@"; then
		echo "ok - $what"
	else
		echo "not ok - $what"
	fi
}
note() { echo "# $*"; }
# json_ok JSON FILTER: whether FILTER (jq) holds for JSON.
json_ok() { jq -e "$2" <<<"$1" >/dev/null 2>&1; }

# What is on the root filesystem, for the piuparts-style "nothing left
# behind": paths only, without what any boot or the test itself changes.
fs_list() {
	find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run \
		-o -path /tmp -o -path /var/tmp -o -path /var/log -o -path /var/cache \
		-o -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/backups \
		-o -path /var/lib/systemd/timers -o -path /var/lib/systemd/catalog \
		-o -path /var/lib/systemd/random-seed -o -path /var/lib/systemd/coredump \
		-o -path /root -o -path /mnt -o -path /etc/lvm/archive -o -path /etc/lvm/backup -o -path /etc/lvm/devices \
		-o -path "$VSS_REPO" -o -path /lost+found \) -prune -o -print | LC_ALL=C sort
}

debs_of() { ls "$1"/vss-dkms_*.deb "$1"/vss-tools_*.deb "$1"/libvss1_*.deb "$1"/libvss-dev_*.deb; }
installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
# The packages of vss that are installed now (apt knows no others offline).
installed_pkgs() {
	local p
	for p in vss-dkms vss-tools libvss1 libvss-dev; do
		if is_installed "$p"; then echo "$p"; fi
	done
}
is_installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
# How often the module was loaded in this boot (it says its version then).
module_loads() { dmesg | grep -c 'vss: version'; }
value() { sed -n "s/^$1=//p" "$state/boot1.env" | tail -n1; }

boot1() {
	local cur=$1 prev=${2:-} v_prev v_cur out id set uuid p point link
	fs_list >"$state/fs-before"

	# --- install the previous build, then upgrade to this one ------------------
	# (Without PREV, this one is installed right away.)
	v_cur=$(sed -n 's/.*vss-tools_\([^_]*\)_.*/\1/p' <<<"$(ls "$cur"/vss-tools_*.deb)")
	[ -n "$prev" ] || prev=$cur
	v_prev=$(sed -n 's/.*vss-tools_\([^_]*\)_.*/\1/p' <<<"$(ls "$prev"/vss-tools_*.deb)")
	note "installing $v_prev (DKMS builds the module: minutes under TCG)"
	# shellcheck disable=SC2046 # one path a word
	apt-get install -y -q $(debs_of "$prev") >"$state/apt-install.log" 2>&1
	check "apt installs the packages of $v_prev offline" [ "$(installed_version vss-tools)" = "$v_prev" ]
	check "DKMS built and installed vss for the running kernel $kver" \
		grep -q "^vss/$v_prev, $kver, [^:]*: installed" <<<"$(dkms status vss 2>&1)"
	check "the module was loaded by vss-cbt.service at install" [ -d /sys/module/vss ]
	check "vss-cbt.service and vss-cbt-restore.service are active" \
		systemctl is-active --quiet vss-cbt.service vss-cbt-restore.service
	check "both units are enabled" systemctl is-enabled --quiet vss-cbt.service vss-cbt-restore.service
	check "/var/lib/vss exists (the README's first --storage)" [ -d /var/lib/vss ]

	if [ "$v_prev" != "$v_cur" ]; then
		note "upgrading to $v_cur"
		# shellcheck disable=SC2046
		apt-get install -y -q $(debs_of "$cur") >"$state/apt-upgrade.log" 2>&1
		check "apt upgrades to $v_cur" [ "$(installed_version vss-tools)" = "$v_cur" ]
		check "DKMS built $v_cur for $kver and removed $v_prev" \
			bash -c "dkms status vss | grep -q '^vss/$v_cur, $kver, [^:]*: installed' && ! dkms status vss | grep -q '$v_prev'"
		check "the upgrade unloaded nothing (one load of vss.ko in this boot)" [ "$(module_loads)" = 1 ]
		check "the units are still active after the upgrade" \
			systemctl is-active --quiet vss-cbt.service vss-cbt-restore.service
	fi
	check "modinfo finds the DKMS module" grep -q "/updates/dkms/vss.ko" <<<"$(modinfo -n vss)"

	# --- a snapshot of a mounted data disk, as the README's first example -----
	mkfs.ext4 -q -F "$data"
	mkdir -p /mnt/data /mnt/snap
	mount "$data" /mnt/data
	echo before >/mnt/data/file
	sync
	out=$(vssctl --json create --storage /var/lib/vss "$data" 2>"$state/create1.err")
	check "vssctl create --storage /var/lib/vss of a mounted disk" \
		json_ok "$out" '.snapshots | length == 1'
	id=$(jq -r '.snapshots[0].id' <<<"$out")
	set=$(jq -r '.set_id // .snapshots[0].set_id' <<<"$out")
	udevadm settle
	link=/dev/vss/${data#/dev/}@1
	check "udev links $link to the image" [ "$(readlink -f "$link")" = /dev/vss0 ]
	check "and /dev/disk/by-id/vss-$id" [ "$(readlink -f "/dev/disk/by-id/vss-$id")" = /dev/vss0 ]
	uuid=$(blkid -s UUID -o value "$data")
	check "by-uuid of the filesystem still names the origin" \
		[ "$(readlink -f "/dev/disk/by-uuid/$uuid")" = "$(readlink -f "$data")" ]
	check "no by-uuid or by-label link points at an image" \
		[ -z "$(find /dev/disk/by-uuid /dev/disk/by-label -lname '*vss*' 2>/dev/null)" ]
	echo after >/mnt/data/file
	sync
	mount -o ro "$link" /mnt/snap
	check "the image shows the file as it was at the snapshot" [ "$(cat /mnt/snap/file 2>&1)" = before ]
	umount /mnt/snap

	# --- and of the mounted root ------------------------------------------------
	out=$(vssctl --json create --storage "$store" /dev/vda 2>"$state/create2.err")
	check "vssctl create of the mounted root filesystem" \
		json_ok "$out" '.snapshots | length == 1'
	udevadm settle
	echo "written after the snapshot" >/etc/vss-install-test
	mount -o ro /dev/vss/vda@1 /mnt/snap 2>/dev/null
	check "the root image mounts and lacks a file written after it" \
		bash -c '[ -f /mnt/snap/etc/hostname ] && [ ! -e /mnt/snap/etc/vss-install-test ]'
	umount /mnt/snap 2>/dev/null
	rm -f /etc/vss-install-test

	# --- bash completion, as an interactive shell would use it ---------------------
	complete_words() {
		bash -c '. /usr/share/bash-completion/bash_completion
			_completion_loader vssctl
			read -ra COMP_WORDS <<<"$1"
			[[ $1 == *" " ]] && COMP_WORDS+=("")
			COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) COMP_LINE=$1 COMP_POINT=${#1}
			_vssctl vssctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
			printf "%s\n" "${COMPREPLY[@]}"' _ "$1"
	}
	check "completion: commands" grep -qx create <<<"$(complete_words "vssctl cr")"
	check "completion: options of create" grep -qx -- --storage-limit <<<"$(complete_words "vssctl create --st")"
	check "completion: cbt subcommands" grep -qx changes <<<"$(complete_words "vssctl cbt ")"
	check "completion: devices" grep -qx "$data" <<<"$(complete_words "vssctl track /dev/")"
	check "completion: snapshot ids from vssctl list" grep -qx "$id" <<<"$(complete_words "vssctl show ")"
	check "completion: set ids for delete --set" grep -qx "$set" <<<"$(complete_words "vssctl delete --set ")"
	check "completion: no images among the devices" \
		bash -c '! grep -q "^/dev/vss[0-9]" <<<"$1"' _ "$(complete_words "vssctl create ")"

	vssctl delete --all >/dev/null
	check "snapshots deleted" [ -z "$(vssctl --json list | jq -r '.snapshots[]?.id' 2>/dev/null)" ]

	# --- libvss-dev: the example agent builds against the installed library -------
	check "the example agent builds with pkg-config libvss and links libvss.so.1" bash -c '
		cd /tmp && cc -std=c11 -D_GNU_SOURCE -o agent -I/usr/share/doc/libvss-dev/examples \
			/usr/share/doc/libvss-dev/examples/vss-backup-agent.c \
			/usr/share/doc/libvss-dev/examples/sha256.c $(pkg-config --cflags --libs libvss) \
			>"$1/agent-build.log" 2>&1 &&
		ldd ./agent | grep -Eq "libvss.so.1 => (/usr)?/lib/x86_64-linux-gnu/libvss.so.1" &&
		./agent --help >/dev/null' _ "$state"

	# --- an LVM volume and an md array that appear only after vss-cbt starts ------
	pvcreate -q "$pv" >/dev/null && vgcreate -q vgvss "$pv" >/dev/null &&
		lvcreate -q -y -L 64M -n lv vgvss >/dev/null
	# Not activated by udev at boot: the unit below brings them up late.
	vgchange -q --setautoactivation n vgvss >/dev/null
	mdadm --create "$md" --run --quiet --level=1 --raid-devices=2 --metadata=1.2 \
		--assume-clean "$md1" "$md2" 2>/dev/null
	cp -a /etc/mdadm/mdadm.conf /root/mdadm.conf.orig
	printf 'AUTO -all\n' >/etc/mdadm/mdadm.conf
	cat >/etc/systemd/system/vss-test-late-devices.service <<-EOF
	[Unit]
	Description=vss install test: an LVM volume and an md array that come up late
	DefaultDependencies=no
	After=vss-cbt.service
	Before=local-fs-pre.target

	[Service]
	Type=oneshot
	ExecStart=/bin/sh -c 'sleep 3; echo "activating the late devices"; vgchange -ay vgvss; mdadm --assemble --run $md $md1 $md2'
	[Install]
	WantedBy=sysinit.target
	EOF
	systemctl enable --quiet vss-test-late-devices.service
	check "an LVM volume and an md array" test -b "$lv" -a -b "$md"

	# Tracked, written, a snapshot (its point P), written again: the changes
	# since P must be the same after the reboot.
	vssctl track "$lv" >/dev/null && vssctl track "$md" >/dev/null
	dd if=/dev/urandom of="$lv" bs=4k count=4 seek=10 oflag=direct status=none
	dd if=/dev/urandom of="$md" bs=4k count=2 seek=7 oflag=direct status=none
	echo more >/mnt/data/file2
	sync
	out=$(vssctl --json create --no-freeze --storage "$store" "$lv" "$md" "$data" 2>"$state/create3.err")
	check "one set of the LVM volume, the md array and the data disk" \
		json_ok "$out" '.snapshots | length == 3'
	for dev in "$lv" "$md" "$data"; do
		p=$(vssctl --json show "$(jq -r --arg d "$(basename "$(readlink -f "$dev")")" \
			'.snapshots[] | select(.origin.name == $d) | .id' <<<"$out")" | jq -r .cbt_point)
		echo "point_${dev//[^a-z0-9]/_}=$p"
	done >"$state/boot1.env"
	vssctl delete --all >/dev/null
	dd if=/dev/urandom of="$lv" bs=4k count=3 seek=100 oflag=direct status=none
	dd if=/dev/urandom of="$md" bs=4k count=1 seek=50 oflag=direct status=none
	echo changed >/mnt/data/file2
	sync
	umount /mnt/data
	for dev in "$lv" "$md" "$data"; do
		key=${dev//[^a-z0-9]/_}
		point=$(value "point_$key")
		echo "changes_$key=$(vssctl --json cbt changes "$dev" --from "$point" | jq -c '[.extents[] | [.offset, .length]]')"
		echo "generation_$key=${point%%:*}"
	done >>"$state/boot1.env"
	check "points and changes recorded" [ -n "$(value "changes__dev_vgvss_lv")" ]
	note "$(tr '\n' ' ' <"$state/boot1.env")"
	echo reboot >/run/vss/end
}

boot2() {
	local key dev point gen changes verdicts
	check "the module was loaded at boot" [ -d /sys/module/vss ]
	check "vss-cbt.service and vss-cbt-restore.service are active" \
		systemctl is-active --quiet vss-cbt.service vss-cbt-restore.service
	journalctl -b -o short-monotonic --no-pager -u vss-cbt.service -u vss-cbt-restore.service \
		-u vss-test-late-devices.service >"$state/boot2-journal" 2>&1
	check "vss-cbt-restore waited for the late devices" grep -q 'waiting up to' "$state/boot2-journal"
	check "... which came up only after it had started" \
		awk '/Starting vss-cbt-restore/ { s = NR } /activating the late devices/ { a = NR }
			/dm-0.cbt: continued/ { d = NR } END { exit !(s && a > s && d > a) }' \
		"$state/boot2-journal"
	for dev in "$lv" "$md" "$data"; do
		key=${dev//[^a-z0-9]/_}
		point=$(value "point_$key")
		gen=$(value "generation_$key")
		changes=$(value "changes_$key")
		check "$dev: the reboot kept its generation" \
			[ "$(vssctl --json cbt info "$dev" 2>/dev/null | jq -r .generation)" = "$gen" ]
		check "$dev: the same changes since the snapshot before the reboot" \
			[ "$(vssctl --json cbt changes "$dev" --from "$point" 2>/dev/null | jq -c '[.extents[] | [.offset, .length]]')" = "$changes" ]
	done
	verdicts=$(grep -c '\.cbt: continued' "$state/boot2-journal")
	check "three maps continued" [ "$verdicts" -ge 3 ]
	check "the root filesystem, in use at the save, starts a new generation" \
		grep -q 'vda.cbt: new-generation' "$state/boot2-journal"
	check "no map is left unrestored" [ -z "$(ls /var/lib/vss/cbt/*.cbt /var/lib/vss/cbt/.boot-*/*.cbt 2>/dev/null)" ]

	# A kernel for which DKMS built nothing: the module file goes away.
	# (modules.dep still names it; modprobe fails all the same, and a
	# depmod of the whole kernel takes a minute under TCG.)
	mkdir -p /root/vss-module
	mv /lib/modules/"$kver"/updates/dkms/vss.ko* /root/vss-module/
	echo reboot >/run/vss/end
}

boot3() {
	local cur=$1 out
	check "without a module, vss-cbt.service fails" systemctl is-failed --quiet vss-cbt.service
	out=$(journalctl -b --no-pager -u vss-cbt.service 2>&1)
	check "... saying which kernel and what to do" \
		grep -q "cannot load the vss module for the running kernel $kver" <<<"$out"
	check "... and that the saved maps are lost" grep -q 'cannot be restored in this boot' <<<"$out"
	check "vss-cbt-restore.service did not run" bash -c '! systemctl is-active --quiet vss-cbt-restore.service'
	check "the maps of the last shutdown are set aside for this boot only" \
		bash -c 'ls /var/lib/vss/cbt/.boot-"$(cat /proc/sys/kernel/random/boot_id)"/*.cbt >/dev/null 2>&1'
	mv /root/vss-module/vss.ko* /lib/modules/"$kver"/updates/dkms/
	systemctl start vss-cbt-restore.service
	check "with the module back, both units start" \
		systemctl is-active --quiet vss-cbt.service vss-cbt-restore.service

	# --- apt remove with a snapshot ------------------------------------------------
	vssctl create --storage "$store" "$data" >/dev/null
	out=$(apt-get remove -y -q $(installed_pkgs) 2>&1)
	check "apt remove is refused while a snapshot exists" is_installed vss-tools
	check "... saying what to do" grep -q 'vssctl delete --all' <<<"$out"
	check "... and the snapshot is still there" [ -b /dev/vss0 ]
	vssctl delete --all >/dev/null
	vssctl track "$data" >/dev/null 2>&1
	out=$(apt-get remove -y -q $(installed_pkgs) 2>&1)
	echo "$out" >"$state/apt-remove.log"
	check "apt remove works once the snapshots are gone" \
		bash -c '! dpkg -l vss-tools vss-dkms 2>/dev/null | grep -q "^ii"'
	check "it unloaded nothing: vss.ko stays loaded, tracking its devices" [ -d /sys/module/vss ]
	check "it said the module stays loaded" grep -q 'the vss module stays loaded' <<<"$out"
	apt-get purge -y -q $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'vss-*' 'libvss*' 2>/dev/null |
		awk '$1 != "un" { print $NF }') >"$state/apt-purge.log" 2>&1
	check "apt purge leaves no package" [ -z "$(dpkg -l 'vss-*' 'libvss*' 2>/dev/null | grep '^[a-z][a-z] ' | grep -v '^un')" ]
	systemctl disable --quiet vss-test-late-devices.service
	rm -f /etc/systemd/system/vss-test-late-devices.service
	cp -a /root/mdadm.conf.orig /etc/mdadm/mdadm.conf
	fs_list >"$state/fs-after"
	check "remove and purge leave nothing behind on the root filesystem" \
		diff "$state/fs-before" "$state/fs-after"
	check "nor in deb-systemd-helper's state" \
		bash -c '! grep -rqs vss-cbt /var/lib/systemd/deb-systemd-helper-enabled'
}

case $step in
boot1) boot1 "$2" "${3:-}" ;;
boot2) boot2 ;;
boot3) boot3 "$2" ;;
*) echo "usage: vss_install_guest.sh boot1 CUR PREV | boot2 | boot3 CUR" >&2; exit 2 ;;
esac
exit 0
