# vss top-level build. See README.md.
#
#   make                 module for the selected kernel + vssctl/libvss
#   make module          only the module
#   make tools           only vssctl, libvss and the examples
#   make check           everything make check runs (see README)
#   make demo            the main job, in a VM
#   make bench           benchmarks, in a VM
#   make install         module, tools, library, headers, man pages
#
# Kernel selection: KDIR/KVER as for any out-of-tree module. Without them,
# the running kernel's headers are used if installed; otherwise the
# VSS_KERNEL series (6.1, 6.12 or debug; default 6.12) from the dependency
# cache.

VERSION    := 0.4.0
SRCDIR     := $(abspath .)
BUILD      := $(SRCDIR)/build
VSS_CACHE  ?= $(HOME)/.cache/vss
VSS_KERNEL ?= 6.12
# The debug kernel (scripts/build-debug-kernel) once scripts/deps.sh
# --debug-kernel has built it.
KERNELS    := 6.1 6.12 $(if $(wildcard $(VSS_CACHE)/kernels/debug.env),debug)

kernel_env = $(VSS_CACHE)/kernels/$(1).env
kernel_var = $(shell sed -n 's/^$(2)=//p' $(call kernel_env,$(1)) 2>/dev/null)

ifeq ($(origin KDIR),undefined)
  ifneq ($(KVER),)
    KDIR := /lib/modules/$(KVER)/build
  else ifneq ($(wildcard /lib/modules/$(shell uname -r)/build/Makefile),)
    KVER := $(shell uname -r)
    KDIR := /lib/modules/$(KVER)/build
  else
    KVER := $(call kernel_var,$(VSS_KERNEL),KVER)
    KDIR := $(call kernel_var,$(VSS_KERNEL),KDIR)
  endif
endif
KVER ?= $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)

# Out-of-tree builds write objects next to the sources; a per-kernel tree
# of symlinks keeps the two kernels' objects apart.
MODDIR      = $(BUILD)/$(KVER)
KMOD_SRCS  := Kbuild $(wildcard kmod/*.c kmod/*.h) uapi/linux/vss.h

.PHONY: all module tools install uninstall clean check demo bench deps \
	dkms-tree FORCE

all: module tools

deps:
	@bash scripts/deps.sh

$(BUILD)/%/.tree: $(KMOD_SRCS)
	@mkdir -p $(BUILD)/$*/kmod $(BUILD)/$*/uapi/linux
	@for f in $(KMOD_SRCS); do ln -sf $(SRCDIR)/$$f $(BUILD)/$*/$$f; done
	@find $(BUILD)/$*/kmod -xtype l -delete
	@touch $@

module: $(MODDIR)/.tree
	@test -n "$(KDIR)" -a -d "$(KDIR)" || { echo "make: no kernel headers (KDIR='$(KDIR)'); run scripts/deps.sh or set KDIR" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(MODDIR) $(KBUILD_FLAGS) modules

# Userspace components, each with its own Makefile taking O= and VERSION=,
# built in this order (vsswriterd/ and examples/ link the libvss that
# vssctl/ builds).
TOOL_DIRS := vssctl vsswriterd examples

tools:
	@set -e; for d in $(TOOL_DIRS); do \
		$(MAKE) -C $$d O=$(BUILD) VERSION=$(VERSION); done

# Modules for both supported kernels, with W=1 (the build check).
modules-all:
	@set -e; for k in $(KERNELS); do \
		$(MAKE) --no-print-directory module VSS_KERNEL=$$k KDIR= KVER= \
			KDIR=$$(sed -n 's/^KDIR=//p' $(call kernel_env,$$k)) \
			KVER=$$(sed -n 's/^KVER=//p' $(call kernel_env,$$k)); \
	done

INSTALL_MOD_DIR ?= extra
install: all
	$(MAKE) -C $(KDIR) M=$(MODDIR) INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) modules_install
	@set -e; for d in $(TOOL_DIRS); do \
		$(MAKE) -C $$d O=$(BUILD) VERSION=$(VERSION) install; done
	install -D -m 644 udev/90-vss.rules $(DESTDIR)/lib/udev/rules.d/90-vss.rules
	sed 's|@BINDIR@|$(or $(BINDIR),$(or $(PREFIX),/usr/local)/bin)|g' systemd/vss-cbt.service > $(BUILD)/vss-cbt.service
	install -D -m 644 $(BUILD)/vss-cbt.service $(DESTDIR)/lib/systemd/system/vss-cbt.service
	sed 's|@SBINDIR@|$(or $(SBINDIR),$(or $(PREFIX),/usr/local)/sbin)|g' systemd/vsswriterd.service > $(BUILD)/vsswriterd.service
	install -D -m 644 $(BUILD)/vsswriterd.service $(DESTDIR)/lib/systemd/system/vsswriterd.service
	install -D -m 644 systemd/vsswriterd.socket $(DESTDIR)/lib/systemd/system/vsswriterd.socket
	sed 's|@BINDIR@|$(or $(BINDIR),$(or $(PREFIX),/usr/local)/bin)|g' modprobe.d/vss.conf > $(BUILD)/vss.conf
	install -D -m 644 $(BUILD)/vss.conf $(DESTDIR)/etc/modprobe.d/vss.conf
	-depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) -a $(KVER)

clean:
	rm -rf $(BUILD) results

check:
	@bash scripts/check.sh

demo:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory -s all
	@bash scripts/demo.sh

bench:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory -s all
	@bash scripts/bench.sh
