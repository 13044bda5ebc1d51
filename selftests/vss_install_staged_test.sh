#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The from-source install, as a new user runs it, checked in staged
# installs (DESTDIR) on the host: nothing here loads the module or touches
# the running system.
#
#   install-tools     everything but the module, with the paths filled in
#   install-module    only vss.ko, into DESTDIR, no depmod of the host
#   make, no headers  the error names the headers package to install
#   uninstall         leaves nothing of either behind
#   dkms-tree         a tree that dkms builds, with the version filled in
#
#   VSS_KERNEL=6.1 selftests/vss_install_staged_test.sh
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kernel=${VSS_KERNEL:-6.12}
cache=${VSS_CACHE:-$HOME/.cache/vss}
out=${VSS_RESULTS:-$repo/results/install-staged-$kernel}
rm -rf "$out"
mkdir -p "$out"
KVER='' KDIR=''
# shellcheck source=/dev/null
. "$cache/kernels/$kernel.env"
version=$(sed -n '1s/^vss (\([^)]*\)).*/\1/p' "$repo/debian/changelog")
running=$(uname -r)
stage=$out/stage
build=$out/build

n=0
failed=0
check() {
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n $what"
	else
		echo "not ok $n $what"
		failed=$((failed + 1))
	fi
}
# m ARGS...: make in the tree, with its own build directory; output in a log.
m() { make -C "$repo" --no-print-directory BUILD="$build" "$@" >>"$out/make.log" 2>&1; }
files_in() { (cd "$1" && find . \( -type f -o -type l \) | LC_ALL=C sort); }

echo "TAP version 13"

# --- tools only -----------------------------------------------------------------
check "make install-tools DESTDIR=... PREFIX=/usr/local" m install-tools DESTDIR="$stage" PREFIX=/usr/local
for f in usr/local/sbin/vssctl usr/local/lib/libvss.so.1 usr/local/lib/libvss.so \
	usr/local/lib/libvss.a usr/local/include/vss/libvss.h usr/local/include/linux/vss.h \
	usr/local/lib/pkgconfig/libvss.pc usr/local/share/man/man8/vssctl.8 \
	lib/udev/rules.d/90-vss.rules lib/systemd/system/vss-cbt.service \
	lib/systemd/system/vss-cbt-restore.service usr/local/lib/vss/vss-cbt \
	etc/modprobe.d/vss.conf usr/local/share/bash-completion/completions/vssctl \
	usr/local/share/doc/vss/examples/vss-backup-agent.c; do
	check "install-tools: /$f" test -e "$stage/$f"
done
check "install-tools: /var/lib/vss is made (the README's first --storage)" test -d "$stage/var/lib/vss"
check "install-tools: no module (a DKMS user gets one copy)" \
	test -z "$(find "$stage" -name 'vss.ko*')"
check "install-tools: the units name where vssctl and its helper went" \
	bash -c 'grep -q "^ExecStart=/usr/local/lib/vss/vss-cbt start" "$1/lib/systemd/system/vss-cbt.service" &&
		grep -q "^vssctl=/usr/local/sbin/vssctl" "$1/usr/local/lib/vss/vss-cbt" &&
		grep -q "/usr/local/sbin/vssctl cbt restore" "$1/etc/modprobe.d/vss.conf"' _ "$stage"
check "install-tools: no @PLACEHOLDER@ is left" \
	bash -c '! grep -rlE "@(BINDIR|LIBEXECDIR|STATEDIR|VERSION|PREFIX|LIBDIR|INCLUDEDIR)@" "$1"' _ "$stage"
check "install-tools: the man page says version $version" \
	grep -q "\"vss $version\"" "$stage/usr/local/share/man/man8/vssctl.8"
check "install-tools: vssctl runs and says version $version" \
	bash -c '"$1/usr/local/sbin/vssctl" --version | grep -q "$2"' _ "$stage" "$version"
check "install-tools: the units pass systemd-analyze verify" \
	bash -c 'command -v systemd-analyze >/dev/null || exit 0
		d=$(mktemp -d); trap "rm -rf $d" EXIT
		cp "$1"/lib/systemd/system/vss-cbt*.service "$d/"
		sed -i "s|/usr/local/lib/vss/vss-cbt|/bin/true|" "$d"/*.service
		systemd-analyze verify "$d"/vss-cbt.service "$d"/vss-cbt-restore.service 2>&1 | grep -v "^$" | grep -v "Command .man " | grep . && exit 1 || exit 0' _ "$stage"

# --- the module only, into the stage --------------------------------------------
before_host=$(ls -d /lib/modules/* 2>/dev/null | tr '\n' ' ')
check "make install-module DESTDIR=... KVER=$KVER" \
	m install-module DESTDIR="$stage" KVER="$KVER" KDIR="$KDIR"
check "install-module: vss.ko in DESTDIR/lib/modules/$KVER/extra" \
	bash -c 'ls "$1/lib/modules/$2/extra/"vss.ko* >/dev/null' _ "$stage" "$KVER"
check "install-module: no depmod in a staged install" \
	test -z "$(find "$stage/lib/modules" -name 'modules.dep*')"
check "install-module: the host's /lib/modules is untouched" \
	[ "$(ls -d /lib/modules/* 2>/dev/null | tr '\n' ' ')" = "$before_host" ]

# --- without headers for the running kernel ----------------------------------------
if [ ! -e "/lib/modules/$running/build" ]; then
	: >"$out/make.log.noheaders"
	# A server: no test cache either.
	make -C "$repo" --no-print-directory BUILD="$build" VSS_CACHE="$out/no-cache" module \
		>"$out/noheaders.log" 2>&1
	rc=$?
	check "make on a server without headers fails" [ "$rc" != 0 ]
	check "... naming the package to install, linux-headers-$running" \
		grep -q "apt-get install linux-headers-$running" "$out/noheaders.log"
	check "... and not the test dependency script" bash -c '! grep -q deps.sh "$1"' _ "$out/noheaders.log"
	make -C "$repo" --no-print-directory BUILD="$build" install-module DESTDIR="$stage.2" \
		>"$out/noheaders-install.log" 2>&1
	rc=$?
	check "make install-module never installs a test kernel's module" \
		bash -c '[ "$1" != 0 ] && [ -z "$(find "$2" -name "vss.ko*" 2>/dev/null)" ] &&
			grep -q "not installing the module of the test kernel" "$3"' _ "$rc" "$stage.2" "$out/noheaders-install.log"
else
	echo "ok $((n += 1)) # SKIP the running kernel $running has headers"
fi

# --- uninstall --------------------------------------------------------------------
check "make uninstall DESTDIR=... PREFIX=/usr/local KVER=$KVER" \
	m uninstall DESTDIR="$stage" PREFIX=/usr/local KVER="$KVER"
left=$(files_in "$stage")
check "uninstall leaves no file behind" [ -z "$left" ]
[ -z "$left" ] || printf '#   left: %s\n' $left

# --- the DKMS tree ----------------------------------------------------------------
check "make dkms-tree DESTDIR=..." m dkms-tree DESTDIR="$out/dkms-root"
src=$out/dkms-root/usr/src/vss-$version
check "dkms-tree: /usr/src/vss-$version with dkms.conf of that version" \
	grep -qx "PACKAGE_VERSION=\"$version\"" "$src/dkms.conf"
check "dkms-tree: dkms builds it for $KVER" \
	bash -c 'mkdir -p "$4" && dkms build -m vss -v "$1" -k "$2" --sourcetree "$3" --dkmstree "$4" \
			--kernelsourcedir "$5" >"$6" 2>&1 &&
		ls "$4/vss/$1/$2/"*/module/vss.ko* >/dev/null' \
	_ "$version" "$KVER" "$out/dkms-root/usr/src" "$out/dkms" "$KDIR" "$out/dkms.log"

echo "1..$n"
rm -rf "$stage" "$stage.2" "$build" "$out/dkms-root" "$out/dkms"
[ $failed = 0 ]
