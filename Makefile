# SPDX-License-Identifier: GPL-2.0
#
# cowmap: kernel module (Kbuild), libcowmap, the cowmap CLI, tests.
#
#   make              module for KDIR, library, CLI
#   make check        host tests, then VM selftests on 6.1, 6.12 and debug
#   make demo         boots a VM and runs 'cowmap demo'
#   make vm-run SCRIPT=path [KVER=6.1|6.12|debug]
#   make style        checkpatch + sparse on kmod/ and uapi/
#   make install      module, library, header, CLI, man page, udev rule
#   make dkms-install register and build the module with DKMS

VERSION   := 1.0.0
SOVERSION := 1

TOP   := $(CURDIR)
BUILD ?= $(TOP)/build

# KDIR: the running kernel's build tree if it exists, else the newest
# Debian linux-headers-*-amd64.
KDIR ?= $(shell if [ -d /lib/modules/$$(uname -r)/build ]; then \
		echo /lib/modules/$$(uname -r)/build; \
	else ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n1; fi)

CC      ?= cc
CFLAGS  ?= -O2 -g
WFLAGS  := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -Wformat=2 -Wno-unused-parameter -Werror=implicit-function-declaration
CPPFLAGS += -I$(TOP)/uapi -I$(TOP)/lib -D_GNU_SOURCE \
	    -DCOWMAP_VERSION_STRING='"$(VERSION)"'
MNL_CFLAGS := $(shell pkg-config --cflags libmnl 2>/dev/null)
MNL_LIBS   := $(shell pkg-config --libs libmnl 2>/dev/null || echo -lmnl)

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DESTDIR    ?=

# lib/preload.c is the LD_PRELOAD shim of 'cowmap run', not part of libcowmap.
LIB_SRCS := $(filter-out lib/preload.c,$(wildcard lib/*.c))
LIB_OBJS := $(patsubst lib/%.c,$(BUILD)/lib/%.o,$(LIB_SRCS))
LIB_PIC  := $(patsubst lib/%.c,$(BUILD)/lib/%.pic.o,$(LIB_SRCS))
CLI_SRCS := $(wildcard cli/*.c)
CLI_OBJS := $(patsubst cli/%.c,$(BUILD)/cli/%.o,$(CLI_SRCS))
HDRS     := $(wildcard lib/*.h cli/*.h uapi/linux/*.h)

SHLIB  := $(BUILD)/libcowmap.so.$(VERSION)
STLIB  := $(BUILD)/libcowmap.a
PCFILE := $(BUILD)/cowmap.pc
CLI    := $(BUILD)/cowmap
PRELOAD := $(BUILD)/libcowmap-preload.so
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/cowmap-%,$(wildcard examples/*.c))

.PHONY: all module userspace lib cli deps check check-host check-vm demo \
	vm-run style install dkms-install dkms-test bench clean help examples

all: module userspace

userspace: lib cli examples
lib: $(SHLIB) $(STLIB) $(PCFILE) $(PRELOAD)
cli: $(CLI)
examples: $(EXAMPLES)

help:
	@sed -n '3,13p' Makefile | sed 's/^# \{0,1\}//'

module:
	@test -n "$(KDIR)" -a -d "$(KDIR)" || \
		{ echo "no kernel build tree: set KDIR, or run 'make deps'" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(TOP) W=1 modules

$(BUILD)/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WFLAGS) $(MNL_CFLAGS) -fvisibility=hidden -c -o $@ $<

$(BUILD)/lib/%.pic.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WFLAGS) $(MNL_CFLAGS) -fvisibility=hidden -fPIC -c -o $@ $<

$(SHLIB): $(LIB_PIC) lib/libcowmap.map
	$(CC) -shared -Wl,-soname,libcowmap.so.$(SOVERSION) \
		-Wl,--version-script=lib/libcowmap.map -o $@ $(LIB_PIC) $(MNL_LIBS) -ldl -lpthread
	ln -sf libcowmap.so.$(VERSION) $(BUILD)/libcowmap.so.$(SOVERSION)
	ln -sf libcowmap.so.$(SOVERSION) $(BUILD)/libcowmap.so

$(STLIB): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(PCFILE): lib/cowmap.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' $< > $@

$(PRELOAD): lib/preload.c $(HDRS)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WFLAGS) -fPIC -shared -fvisibility=hidden \
		-o $@ $< -ldl -lpthread

$(BUILD)/cli/%.o: cli/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DCOWMAP_LIBDIR='"$(LIBDIR)"' $(CFLAGS) $(WFLAGS) -c -o $@ $<

$(CLI): $(CLI_OBJS) $(STLIB)
	$(CC) -o $@ $(CLI_OBJS) $(STLIB) $(MNL_LIBS) -ldl -lpthread

# Example programs using libcowmap (linked statically: they run from the
# build tree and in the test VM).
$(BUILD)/examples/cowmap-%: examples/%.c $(STLIB) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WFLAGS) -o $@ $< $(STLIB) $(MNL_LIBS) -ldl -lpthread

deps:
	@scripts/deps.sh

# The whole test suite: host unit tests, DKMS build test, then the kernel
# selftests in QEMU on each kernel.  Prints "N passed, N failed" last.
check:
	@scripts/deps.sh
	@scripts/check.sh

check-host: userspace
	@$(MAKE) -s -C selftests/host BUILD=$(BUILD) TOP=$(TOP) run

check-vm:
	@selftests/vm/run-selftests.sh $(KVER)

dkms-test:
	@selftests/dkms-test.sh

demo:
	@scripts/deps.sh
	@selftests/vm/vm-run.sh --kver "$(or $(KVER),6.12)" --demo

vm-run:
	@test -n "$(SCRIPT)" || { echo "usage: make vm-run SCRIPT=path [KVER=6.1|6.12|debug]" >&2; exit 2; }
	@scripts/deps.sh
	@selftests/vm/vm-run.sh --kver "$(or $(KVER),6.12)" "$(SCRIPT)"

bench:
	@scripts/deps.sh
	@selftests/bench/run.sh $(KVER)

style:
	@scripts/style.sh

install: all
	$(MAKE) -C $(KDIR) M=$(TOP) modules_install
	-depmod -a $(notdir $(patsubst %/build,%,$(KDIR)))
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCLUDEDIR)/linux $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)/etc/udev/rules.d $(DESTDIR)/usr/share/bash-completion/completions
	install -m 0755 $(SHLIB) $(PRELOAD) $(DESTDIR)$(LIBDIR)/
	ln -sf libcowmap.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcowmap.so.$(SOVERSION)
	ln -sf libcowmap.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libcowmap.so
	install -m 0644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	install -m 0644 $(PCFILE) $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 0644 lib/cowmap.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 0644 uapi/linux/cowmap.h $(DESTDIR)$(INCLUDEDIR)/linux/
	install -m 0755 $(CLI) $(DESTDIR)$(BINDIR)/
	install -m 0644 cli/cowmap.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 scripts/60-cowmap.rules $(DESTDIR)/etc/udev/rules.d/
	install -m 0644 cli/completion.bash $(DESTDIR)/usr/share/bash-completion/completions/cowmap
	-ldconfig

dkms-install:
	scripts/dkms-install.sh $(VERSION)

clean:
	rm -rf $(BUILD)
	-$(MAKE) -C $(KDIR) M=$(TOP) clean 2>/dev/null
	rm -f kmod/*.o kmod/.*.cmd
