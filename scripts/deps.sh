#!/bin/bash
# Installs what building, testing and demonstrating vss needs, and only what
# is missing. Safe to run again and again: every step checks first.
#
# Host packages come from apt-get. The two test kernels (newest Debian 12
# 6.1 and 6.12) are downloaded as .debs and unpacked into the cache, never
# installed into /boot: the host keeps running its own kernel.
#
# usage: scripts/deps.sh          everything: tests, VM, packaging
#        scripts/deps.sh deb      only what `make deb` needs to build the
#                                 Debian packages (no test kernels)
#
# Environment:
#   VSS_CACHE   cache folder (default ~/.cache/vss)
#   VSS_OFFLINE=1  use what the cache has, fail if something is missing
set -euo pipefail

mode=${1:-all}
case $mode in
all|deb) ;;
*) echo "usage: scripts/deps.sh [deb]" >&2; exit 2 ;;
esac

cache=${VSS_CACHE:-$HOME/.cache/vss}
mkdir -p "$cache"

log() { printf 'deps: %s\n' "$*" >&2; }

apt_updated=
apt_update_once() {
	[ -n "$apt_updated" ] && return 0
	log "apt-get update"
	apt-get update -qq >/dev/null
	apt_updated=1
}

host_packages=(
	build-essential make gcc-12 bc flex bison libelf-dev libssl-dev dwarves
	kmod cpio xz-utils zstd pkg-config
	qemu-system-x86 busybox-static
	libnl-3-dev libnl-genl-3-dev libjson-c-dev
	e2fsprogs xfsprogs lvm2 mdadm fio jq sparse util-linux
	udev	# systemd-udevd and udevadm, run in the VM by vss_udev_test
	python3 python3-matplotlib dkms
	fdisk	# sfdisk, for the partition tests in the VM
	mmdebstrap qemu-utils	# the system image of vm-run --system (scripts/system-image)
)
# The build dependencies of debian/control, and lintian for make deb's check.
deb_packages=(
	build-essential debhelper dh-dkms dpkg-dev fakeroot lintian pkg-config
	libnl-3-dev libnl-genl-3-dev libjson-c-dev
)
if [ "$mode" = deb ]; then
	host_packages=("${deb_packages[@]}")
else
	host_packages+=("${deb_packages[@]}")
fi

missing=()
for p in "${host_packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt_update_once
	log "installing ${missing[*]}"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = deb ]; then
	log "ready to build the packages"
	exit 0
fi

# newest_pkg REGEX: the highest version of a package whose name matches.
newest_pkg() {
	local name
	name=$(apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' | sort -V | tail -n1)
	if [ -z "$name" ]; then
		apt_update_once
		name=$(apt-cache search --names-only "$1" | awk '{print $1}' | sort -V | tail -n1)
	fi
	[ -n "$name" ] || { log "no package matches $1"; exit 1; }
	echo "$name"
}

# unpack_debs DEST PKG...: download each .deb once and unpack it into DEST.
unpack_debs() {
	local dest=$1 p deb
	shift
	mkdir -p "$cache/debs" "$dest"
	for p in "$@"; do
		deb=$(ls "$cache/debs/${p}_"*.deb 2>/dev/null | head -n1 || true)
		if [ -z "$deb" ]; then
			log "downloading $p"
			(cd "$cache/debs" && apt-get download -qq "$p" >/dev/null 2>&1) ||
				{ apt_update_once; (cd "$cache/debs" && apt-get download -qq "$p" >/dev/null); }
			deb=$(ls "$cache/debs/${p}_"*.deb | head -n1)
		fi
		dpkg-deb -x "$deb" "$dest"
	done
}

# setup_kernel SERIES IMAGE_PKG: headers, kbuild and image of one kernel,
# unpacked under $cache/kernels/SERIES. Writes SERIES.env with KVER, KDIR
# and the image path for the Makefile and the VM harness.
setup_kernel() {
	local series=$1 image_pkg=$2 kver root
	kver=${image_pkg#linux-image-}
	root=$cache/kernels/$kver
	if [ -f "$root/.complete" ]; then
		:
	else
		local common kbuild
		common=$(apt-cache show "linux-headers-$kver" | sed -n 's/^Depends:.*\(linux-headers-[^ ]*-common\) .*/\1/p' | head -n1)
		kbuild=$(apt-cache show "linux-headers-$kver" | grep -o 'linux-kbuild-[^ ,]*' | head -n1)
		rm -rf "$root"
		unpack_debs "$root" "$image_pkg" "linux-headers-$kver" "$common" "$kbuild"
		# The headers' Makefile includes the common tree by absolute
		# path; point it into the cache.
		sed -i "s|/usr/src/|$root/usr/src/|" \
			"$root/usr/src/linux-headers-$kver/Makefile"
		touch "$root/.complete"
	fi
	cat >"$cache/kernels/$series.env" <<EOT
KVER=$kver
KDIR=$root/usr/src/linux-headers-$kver
KIMAGE=$root/boot/vmlinuz-$kver
KMODULES=$root/lib/modules/$kver
EOT
}

setup_kernel 6.1 "$(newest_pkg '^linux-image-6\.1\.0-[0-9]+-amd64$')"
setup_kernel 6.12 "$(newest_pkg '^linux-image-6\.12\.[0-9]+\+deb12-amd64$')"

# kselftest harness headers and checkpatch, from Debian's 6.1 source package.
tools=$cache/kernel-tools
if [ ! -f "$tools/.complete" ]; then
	src_pkg=linux-source-6.1
	unpack_debs "$cache/src" "$src_pkg"
	tarball=$(ls "$cache/src/usr/src/"linux-source-6.1.tar.* | head -n1)
	log "extracting kselftest headers and checkpatch from $(basename "$tarball")"
	rm -rf "$tools" && mkdir -p "$tools"
	tar -xf "$tarball" -C "$tools" --strip-components=1 --wildcards \
		'linux-source-6.1/tools/testing/selftests/kselftest*.h' \
		'linux-source-6.1/scripts/checkpatch.pl' \
		'linux-source-6.1/scripts/spelling.txt' \
		'linux-source-6.1/scripts/const_structs.checkpatch'
	rm -rf "$cache/src"
	touch "$tools/.complete"
fi
log "ready (cache: $cache)"
