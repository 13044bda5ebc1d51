# vss top-level build. See README.md.
#
#   make                 module for the selected kernel + vssctl/libvss
#   make module          only the module
#   make tools           only vssctl, libvss and the examples
#   make check           everything make check runs (see README)
#   make check-install   the packages installed on a booted Debian system
#   make demo            the main job, in a VM
#   make bench           benchmarks, in a VM
#   make install         install-module and install-tools
#   make install-tools   vssctl, libvss, headers, man page, udev rules,
#                        vss-cbt.service, modprobe.d, bash completion
#   make install-module  vss.ko into /lib/modules/$(KVER)/extra, then depmod
#   make dkms-tree       the module's source as DKMS wants it, in
#                        $(DESTDIR)/usr/src/vss-$(VERSION)
#   make uninstall       remove what install put there (same PREFIX, DESTDIR)
#   make deb             the Debian packages, into build/deb/
#
# Kernel selection: KDIR/KVER as for any out-of-tree module. Without them,
# the running kernel's headers are used. On a development machine without
# them, make builds (saying so) for the VSS_KERNEL series (6.1, 6.12 or
# debug; default 6.12) from the test cache of scripts/deps.sh; install-module never
# installs such a test kernel's module unless KVER or KDIR names it.
#
# The version is the top entry of debian/changelog, and only there;
# kmod/vss.h and vssctl/libvss.h carry copies that the build checks.

SRCDIR     := $(abspath .)
ifeq ($(origin VERSION),undefined)
VERSION := $(shell head -n1 $(SRCDIR)/debian/changelog 2>/dev/null | cut -d'(' -f2 | cut -d')' -f1)
endif
BUILD      := $(SRCDIR)/build
VSS_CACHE  ?= $(HOME)/.cache/vss
VSS_KERNEL ?= 6.12
# The debug kernel (scripts/build-debug-kernel) once scripts/deps.sh
# --debug-kernel has built it.
KERNELS    := 6.1 6.12 $(if $(wildcard $(VSS_CACHE)/kernels/debug.env),debug)

kernel_env = $(VSS_CACHE)/kernels/$(1).env
kernel_var = $(shell sed -n 's/^$(2)=//p' $(call kernel_env,$(1)) 2>/dev/null)

RUNNING_KVER := $(shell uname -r)
ifeq ($(origin KDIR),undefined)
  ifneq ($(KVER),)
    KDIR := /lib/modules/$(KVER)/build
  else ifneq ($(wildcard /lib/modules/$(RUNNING_KVER)/build/Makefile),)
    KVER := $(RUNNING_KVER)
    KDIR := /lib/modules/$(KVER)/build
  else ifneq ($(wildcard $(call kernel_env,$(VSS_KERNEL))),)
    KVER := $(call kernel_var,$(VSS_KERNEL),KVER)
    KDIR := $(call kernel_var,$(VSS_KERNEL),KDIR)
    KERNEL_FROM_TEST_CACHE := 1
  endif
endif
KVER ?= $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)

# Out-of-tree builds write objects next to the sources; a per-kernel tree
# of symlinks keeps the two kernels' objects apart.
MODDIR      = $(BUILD)/$(KVER)
KMOD_SRCS  := Kbuild $(wildcard kmod/*.c kmod/*.h) uapi/linux/vss.h

.PHONY: all module tools install install-tools install-module uninstall \
	clean check check-install demo bench deps dkms-tree deb FORCE

all: module tools

deps:
	@bash scripts/deps.sh

$(BUILD)/%/.tree: $(KMOD_SRCS)
	@mkdir -p $(BUILD)/$*/kmod $(BUILD)/$*/uapi/linux
	@for f in $(KMOD_SRCS); do ln -sf $(SRCDIR)/$$f $(BUILD)/$*/$$f; done
	@find $(BUILD)/$*/kmod -xtype l -delete
	@touch $@

# What to say when there are no headers to build against. On Debian the
# package is linux-headers-<release>; elsewhere, the distribution's own.
define no_headers
	echo "make: no kernel headers for the running kernel $(RUNNING_KVER) (no /lib/modules/$(RUNNING_KVER)/build)." >&2; \
	echo "make: install them (on Debian: apt-get install linux-headers-$(RUNNING_KVER)), or set KDIR=/path/to/kernel/build." >&2
endef

# The module's version string is a copy of VERSION (kmod/ builds alone
# under DKMS); a release that bumps one and forgets the other fails here.
MODULE_VERSION = $(shell sed -n 's/^\#define VSS_VERSION "\(.*\)"/\1/p' $(SRCDIR)/kmod/vss.h)

ifeq ($(KDIR),)
module:
	@$(no_headers); exit 1
else
module: $(MODDIR)/.tree
	@test -d "$(KDIR)" || { echo "make: KDIR=$(KDIR) is not a directory (kernel headers or build tree)" >&2; exit 1; }
	@test -z "$(VERSION)" -o "$(MODULE_VERSION)" = "$(firstword $(subst ~, ,$(subst -, ,$(subst +, ,$(VERSION)))))" || \
		{ echo "make: kmod/vss.h says VSS_VERSION \"$(MODULE_VERSION)\", debian/changelog $(VERSION): make them agree" >&2; exit 1; }
	$(if $(KERNEL_FROM_TEST_CACHE),@echo "make: no headers for the running kernel $(RUNNING_KVER): building vss.ko for the test kernel $(KVER) (VSS_KERNEL=$(VSS_KERNEL)) from $(VSS_CACHE)" >&2)
	$(MAKE) -C $(KDIR) M=$(MODDIR) $(KBUILD_FLAGS) modules
endif

# Userspace components, each with its own Makefile taking O= and VERSION=,
# built in this order (vsswriterd/ and examples/ link the libvss that
# vssctl/ builds; writers/, the in-box writers, also vsswriterd's
# libvsswriter).
TOOL_DIRS := vssctl vsswriterd writers examples

tools:
	@test -n "$(VERSION)" || { echo "make: no version: debian/changelog is missing" >&2; exit 1; }
	@set -e; for d in $(TOOL_DIRS); do \
		$(MAKE) -C $$d O=$(BUILD) VERSION=$(VERSION); done

# Modules for both supported kernels, with W=1 (the build check).
modules-all:
	@set -e; for k in $(KERNELS); do \
		$(MAKE) --no-print-directory module VSS_KERNEL=$$k KDIR= KVER= \
			KDIR=$$(sed -n 's/^KDIR=//p' $(call kernel_env,$$k)) \
			KVER=$$(sed -n 's/^KVER=//p' $(call kernel_env,$$k)); \
	done

# ---- install ----------------------------------------------------------------
# Everything honours DESTDIR and PREFIX (default /usr/local). A staged
# install (DESTDIR set) never touches the running system: no depmod, no
# udev or systemd reload; the packaging does those.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/sbin
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
# udev, systemd and modprobe read /lib (/usr/lib on a merged /usr) and /etc.
UDEVRULESDIR  ?= /lib/udev/rules.d
SYSTEMDUNITDIR ?= /lib/systemd/system
MODPROBEDIR   ?= $(if $(filter /usr,$(PREFIX)),/lib/modprobe.d,/etc/modprobe.d)
LIBEXECDIR ?= $(PREFIX)/lib/vss
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
STATEDIR   ?= /var/lib/vss
INSTALL_MOD_DIR ?= extra
# What each of TOOL_DIRS gets for its install and uninstall targets.
TOOLS_INSTALL_VARS = PREFIX=$(PREFIX) BINDIR=$(BINDIR) SBINDIR=$(BINDIR) DESTDIR=$(DESTDIR) \
	$(if $(LIBDIR),LIBDIR=$(LIBDIR)) VERSION=$(VERSION) \
	SYSTEMDUNITDIR=$(SYSTEMDUNITDIR) LIBEXECDIR=$(LIBEXECDIR) STATEDIR=$(STATEDIR)

# Files that name where vssctl and the helpers went.
define subst_paths
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
	    -e 's|@STATEDIR@|$(STATEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $(1) > $(2)
endef

install: install-module install-tools

install-tools: tools
	@set -e; for d in $(TOOL_DIRS); do \
		$(MAKE) --no-print-directory -C $$d O=$(BUILD) $(TOOLS_INSTALL_VARS) install; done
	@mkdir -p $(BUILD)/install
	install -D -m 644 udev/90-vss.rules $(DESTDIR)$(UDEVRULESDIR)/90-vss.rules
	$(call subst_paths,systemd/vss-cbt.service,$(BUILD)/install/vss-cbt.service)
	install -D -m 644 $(BUILD)/install/vss-cbt.service $(DESTDIR)$(SYSTEMDUNITDIR)/vss-cbt.service
	$(call subst_paths,systemd/vss-cbt-restore.service,$(BUILD)/install/vss-cbt-restore.service)
	install -D -m 644 $(BUILD)/install/vss-cbt-restore.service $(DESTDIR)$(SYSTEMDUNITDIR)/vss-cbt-restore.service
	$(call subst_paths,systemd/vss-cbt,$(BUILD)/install/vss-cbt)
	install -D -m 755 $(BUILD)/install/vss-cbt $(DESTDIR)$(LIBEXECDIR)/vss-cbt
	sed 's|@SBINDIR@|$(BINDIR)|g' systemd/vsswriterd.service > $(BUILD)/install/vsswriterd.service
	install -D -m 644 $(BUILD)/install/vsswriterd.service $(DESTDIR)$(SYSTEMDUNITDIR)/vsswriterd.service
	install -D -m 644 systemd/vsswriterd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/vsswriterd.socket
	$(call subst_paths,modprobe.d/vss.conf,$(BUILD)/install/vss.conf)
	install -D -m 644 $(BUILD)/install/vss.conf $(DESTDIR)$(MODPROBEDIR)/vss.conf
	install -D -m 644 completion/vssctl $(DESTDIR)$(BASHCOMPDIR)/vssctl
	install -d -m 755 $(DESTDIR)$(STATEDIR)
	$(if $(DESTDIR),,-udevadm control --reload 2>/dev/null)
	$(if $(DESTDIR),,-systemctl daemon-reload 2>/dev/null)

# The module of the kernel selected above, into
# $(DESTDIR)/lib/modules/$(KVER)/$(INSTALL_MOD_DIR). kbuild's own depmod is
# skipped: it would write modules.dep into a staged tree.
install-module: module
	@if [ -n "$(KERNEL_FROM_TEST_CACHE)" ]; then \
		echo "make: not installing the module of the test kernel $(KVER) from $(VSS_CACHE)." >&2; $(no_headers); exit 1; fi
	$(MAKE) -C $(KDIR) M=$(MODDIR) INSTALL_MOD_PATH=$(DESTDIR) INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) DEPMOD=true modules_install
	$(if $(DESTDIR),,depmod -a $(KVER))

# Removes what install-tools and install-module put in place. DKMS trees
# are dkms's to remove (dkms remove vss/$(VERSION) --all).
uninstall:
	@set -e; for d in $(TOOL_DIRS); do \
		$(MAKE) --no-print-directory -C $$d O=$(BUILD) $(TOOLS_INSTALL_VARS) uninstall; done
	rm -f $(DESTDIR)$(UDEVRULESDIR)/90-vss.rules $(DESTDIR)$(SYSTEMDUNITDIR)/vss-cbt.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/vss-cbt-restore.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/vsswriterd.service $(DESTDIR)$(SYSTEMDUNITDIR)/vsswriterd.socket \
		$(DESTDIR)$(LIBEXECDIR)/vss-cbt $(DESTDIR)$(MODPROBEDIR)/vss.conf \
		$(DESTDIR)$(BASHCOMPDIR)/vssctl
	-rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null
	@# The state directory keeps saved maps; it goes only when empty.
	-rmdir $(DESTDIR)$(STATEDIR) 2>/dev/null
	@if [ -n "$(KVER)" ] && ls $(DESTDIR)/lib/modules/$(KVER)/$(INSTALL_MOD_DIR)/vss.ko* >/dev/null 2>&1; then \
		echo "rm -f $(DESTDIR)/lib/modules/$(KVER)/$(INSTALL_MOD_DIR)/vss.ko*"; \
		rm -f $(DESTDIR)/lib/modules/$(KVER)/$(INSTALL_MOD_DIR)/vss.ko*; \
		if [ -z "$(DESTDIR)" ]; then depmod -a $(KVER); fi; \
	fi
	$(if $(DESTDIR),,-systemctl daemon-reload 2>/dev/null)

# What DKMS builds from: Kbuild, the module's sources, the uapi header, the
# Makefile (dkms.conf calls "make module") and dkms.conf with the version.
DKMS_TREE := $(DESTDIR)/usr/src/vss-$(VERSION)
dkms-tree:
	@test -n "$(VERSION)" || { echo "make: no version: debian/changelog is missing" >&2; exit 1; }
	rm -rf $(DKMS_TREE)
	install -d $(DKMS_TREE)/kmod $(DKMS_TREE)/uapi/linux
	install -m 644 Makefile Kbuild $(DKMS_TREE)/
	install -m 644 $(wildcard kmod/*.c kmod/*.h) $(DKMS_TREE)/kmod/
	install -m 644 uapi/linux/vss.h $(DKMS_TREE)/uapi/linux/
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf > $(DKMS_TREE)/dkms.conf
	chmod 644 $(DKMS_TREE)/dkms.conf
	@echo "DKMS tree in $(DKMS_TREE): dkms install vss/$(VERSION)"

# The Debian packages (debian/), built from a clean copy of the tree into
# build/deb/, then checked with lintian. Installs the build dependencies
# first (scripts/deps.sh deb).
deb:
	@bash scripts/build-deb

clean:
	rm -rf $(BUILD) results

check:
	@bash scripts/check.sh

# The booted-system install test (selftests/suites-install), on both kernels.
check-install:
	@VSS_SUITES_FILE=selftests/suites-install VSS_CHECK_KERNELS="6.1 6.12" bash scripts/check.sh

demo:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory -s all
	@bash scripts/demo.sh

bench:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory -s all
	@bash scripts/bench.sh
