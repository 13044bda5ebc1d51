#!/bin/bash
# Installs what building, testing and demonstrating vss needs, and only what
# is missing. Safe to run again and again: every step checks first.
#
# Host packages come from apt-get. The two test kernels (newest Debian 12
# 6.1 and 6.12) are downloaded as .debs and unpacked into the cache, never
# installed into /boot: the host keeps running its own kernel.
#
# usage: scripts/deps.sh [--debug-kernel]   everything: tests, VM, packaging
#        scripts/deps.sh deb              only what `make deb` needs to build
#                                         the Debian packages (no test kernels)
#
# With --debug-kernel (as make check runs it) it also builds the debug kernel
# of the VM suites from Debian's linux-source-6.12 (scripts/build-debug-kernel,
# scripts/debug-kernel.config), once: the build is cached under the source
# version and a hash of the configuration and the build script, so changing
# either builds it again.
#
# Environment:
#   VSS_CACHE   cache folder (default ~/.cache/vss)
#   VSS_OFFLINE=1  use what the cache has, fail if something is missing
#   VSS_DEBUG_KERNEL=1  the same as --debug-kernel
set -euo pipefail

debug_kernel=${VSS_DEBUG_KERNEL:-}
mode=all
for arg in "$@"; do
	case $arg in
	--debug-kernel) debug_kernel=1 ;;
	deb) mode=deb ;;
	*) echo "usage: scripts/deps.sh [--debug-kernel] [deb]" >&2; exit 2 ;;
	esac
done

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
	libsystemd-dev	# sd-daemon for vsswriterd (notify, socket activation)
	systemd		# systemd-socket-activate, run in the VM by vss_writers_test
	e2fsprogs xfsprogs lvm2 mdadm fio jq sparse util-linux
	btrfs-progs	# mkfs.btrfs: vss_samevol_test checks that btrfs is refused
	udev	# systemd-udevd and udevadm, run in the VM by vss_udev_test
	python3 python3-matplotlib dkms
	fdisk	# sfdisk, for the partition tests in the VM
	mmdebstrap qemu-utils	# the system image of vm-run --system (scripts/system-image)
	# the servers and backup tools vss_inbox_test runs in the VM
	postgresql-15 mariadb-server restic borgbackup
)
# The build dependencies of debian/control, and lintian for make deb's check.
deb_packages=(
	build-essential debhelper dh-dkms dpkg-dev fakeroot lintian pkg-config
	libnl-3-dev libnl-genl-3-dev libjson-c-dev libsystemd-dev
	libpq-dev libmariadb-dev	# the in-box writers (writers/), built by make tools
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

# setup_debug_kernel: the debug kernel, built once per source version and
# configuration into $cache/kernels/debug-VERSION-KEY, and debug.env.
setup_debug_kernel() {
	local pkg=linux-source-6.12 ver deb key root kver tarball old
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	if [ -n "${VSS_OFFLINE:-}" ]; then
		deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)
		[ -n "$deb" ] || { log "VSS_OFFLINE: no $pkg .deb in $cache/debs"; exit 1; }
		ver=${deb##*/"${pkg}_"}; ver=${ver%_all.deb}
	else
		ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
		if [ -z "$ver" ]; then
			apt_update_once
			ver=$(apt-cache show --no-all-versions "$pkg" | sed -n 's/^Version: //p' | head -n1)
		fi
		[ -n "$ver" ] || { log "no package $pkg"; exit 1; }
		deb=$cache/debs/${pkg}_${ver}_all.deb
	fi
	key=$({ echo "$ver"; cat "$here/debug-kernel.config" "$here/build-debug-kernel"; } |
		sha256sum | cut -c1-12)
	root=$cache/kernels/debug-$ver-$key
	mkdir -p "$cache/kernels"
	# One build at a time; a second deps.sh waits for it and uses it.
	exec 8>"$cache/kernels/.lock-debug"
	flock 8
	if [ ! -f "$root/.complete" ]; then
		if [ ! -f "$deb" ]; then
			log "downloading $pkg $ver"
			mkdir -p "$cache/debs"
			(cd "$cache/debs" && apt-get download -qq "$pkg=$ver" >/dev/null 2>&1) ||
				{ apt_update_once; (cd "$cache/debs" && apt-get download -qq "$pkg=$ver" >/dev/null); }
		fi
		log "building the debug kernel from $pkg $ver (once: about 21 CPU-minutes, 11 to 22 minutes on 2 cores)"
		rm -f "$cache/kernels"/linux-source.*.tar.xz	# left by a build that was stopped
		tarball=$(mktemp "$cache/kernels/linux-source.XXXXXX.tar.xz")
		dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './usr/src/linux-source-*.tar.*' >"$tarball"
		rm -rf "$root"
		if ! bash "$here/build-debug-kernel" "$tarball" "$root"; then
			rm -f "$tarball"
			log "the debug kernel did not build"
			exit 1
		fi
		rm -f "$tarball"
		touch "$root/.complete"
		# Builds of older sources or configurations are stale now.
		for old in "$cache/kernels"/debug-*; do
			[ "$old" = "$root" ] || [ ! -d "$old" ] || rm -rf "$old"
		done
	fi
	exec 8>&-
	kver=$(cat "$root/kernel.release")
	cat >"$cache/kernels/debug.env" <<EOT
KVER=$kver
KDIR=$root/usr/src/linux-headers-$kver
KIMAGE=$root/boot/vmlinuz-$kver
KMODULES=$root/lib/modules/$kver
# Tests get this many times their time limits on it (scripts/vm-run).
TIMEOUT_SCALE=4
EOT
}
[ -z "$debug_kernel" ] || setup_debug_kernel

log "ready (cache: $cache)"
