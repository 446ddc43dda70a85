# SPDX-License-Identifier: GPL-2.0
#
# cowmap: kernel module (kmod/, which also builds on its own: make -C kmod),
# libcowmap, the cowmap CLI, tests.  The version is the VERSION file's.
#
#   make              module for KDIR, library, CLI
#   make userspace    library, CLI, examples only (no kernel tree, no root)
#   make module       the module for KDIR (make -C kmod)
#   make check        host tests, then VM selftests on 6.1, 6.12 and debug
#   make demo         boots a VM and runs cowmap-demo (examples/demo.c)
#   make vm-run SCRIPT=path [KVER=6.1|6.12|debug]
#   make style        checkpatch + sparse on kmod/ and uapi/
#   make install      install-userspace + install-module ([DESTDIR=] [PREFIX=])
#   make uninstall    uninstall-userspace + uninstall-module
#   make dkms-install register and build the module with DKMS (instead of
#                     install-module)
#   make deb          Debian packages cowmap, libcowmap1, libcowmap-dev and
#                     cowmap-dkms in build/deb/ ($BUILD/deb; dpkg-buildpackage)

VERSION   := $(shell cat VERSION)
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
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
DOCDIR     ?= $(DATADIR)/doc/cowmap
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
COMPLETIONDIR ?= $(DATADIR)/bash-completion/completions
DESTDIR    ?=
# Where 'cowmap run' finds libcowmap-preload.so: relative to the directory of
# the cowmap executable, so that the same binary works for any PREFIX (and
# inside DESTDIR).  Only BINDIR and LIBDIR's relative position is built in.
PRELOAD_REL = $(shell realpath -m --relative-to=$(BINDIR) $(LIBDIR)/cowmap)

LIB_SRCS := $(wildcard lib/*.c)
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
# Test builds: the library with its test hooks (COWMAP_TEST_CRASH_AT) and
# its internal symbols global, and a CLI linked with it.  Used by the host
# tests and the VM selftests, never installed.
TEST_OBJS  := $(patsubst lib/%.c,$(BUILD)/test/lib/%.o,$(LIB_SRCS))
TEST_STLIB := $(BUILD)/test/libcowmap.a
TEST_CLI   := $(BUILD)/test/cowmap
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/cowmap-%,$(wildcard examples/*.c))

.PHONY: all module userspace lib cli deps check check-host check-vm demo \
	vm-run style install dkms-install dkms-test bench clean help examples \
	install-userspace install-module uninstall uninstall-userspace \
	uninstall-module test-build deb FORCE

all: module userspace

userspace: lib cli examples
lib: $(SHLIB) $(STLIB) $(PCFILE) $(PRELOAD)
cli: $(CLI)
examples: $(EXAMPLES)

test-build: $(TEST_STLIB) $(TEST_CLI)

help:
	@sed -n '3,/^$$/{/^#/p}' Makefile | sed 's/^# \{0,1\}//'

module:
	$(MAKE) -C kmod KDIR=$(KDIR) modules

$(BUILD)/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WFLAGS) $(MNL_CFLAGS) -fvisibility=hidden -c -o $@ $<

$(BUILD)/lib/%.pic.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WFLAGS) $(MNL_CFLAGS) -fvisibility=hidden -fPIC -c -o $@ $<

$(BUILD)/test/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DCOWMAP_TEST_HOOKS $(CFLAGS) $(WFLAGS) $(MNL_CFLAGS) -fvisibility=hidden -c -o $@ $<

$(SHLIB): $(LIB_PIC) lib/libcowmap.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libcowmap.so.$(SOVERSION) \
		-Wl,--version-script=lib/libcowmap.map -o $@ $(LIB_PIC) $(MNL_LIBS) -ldl -lpthread
	ln -sf libcowmap.so.$(VERSION) $(BUILD)/libcowmap.so.$(SOVERSION)
	ln -sf libcowmap.so.$(SOVERSION) $(BUILD)/libcowmap.so

# The static library is one relocatable object whose hidden (internal)
# symbols are made local: like the shared library, it defines only the
# cowmap_* functions, so internal names cannot clash with a program's own.
$(STLIB): $(LIB_OBJS)
	rm -f $@ $(BUILD)/lib/libcowmap.o
	ld -r -o $(BUILD)/lib/libcowmap.o $^
	objcopy --localize-hidden $(BUILD)/lib/libcowmap.o
	ar rcs $@ $(BUILD)/lib/libcowmap.o

$(TEST_STLIB): $(TEST_OBJS)
	rm -f $@
	ar rcs $@ $^

# The build tree's cowmap.pc (for PKG_CONFIG_PATH=build); 'make install'
# writes the installed one from the install-time PREFIX/LIBDIR/INCLUDEDIR.
PCSUBST = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|'
$(PCFILE): lib/cowmap.pc.in Makefile
	$(PCSUBST) $< > $@

# preload/: the LD_PRELOAD shim of 'cowmap run', not part of libcowmap (it
# interposes mmap and speaks to /dev/cowmap with the uapi header only).
$(PRELOAD): preload/preload.c $(HDRS)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WFLAGS) $(LDFLAGS) -fPIC -shared -fvisibility=hidden \
		-Wl,-soname,libcowmap-preload.so -o $@ $< -ldl -lpthread

# Rewritten only when PRELOAD_REL changes (a different BINDIR/LIBDIR layout).
$(BUILD)/cli/paths.h: FORCE
	@mkdir -p $(@D)
	@printf '#define COWMAP_PRELOAD_REL "%s"\n' '$(PRELOAD_REL)' | cmp -s - $@ || \
		printf '#define COWMAP_PRELOAD_REL "%s"\n' '$(PRELOAD_REL)' > $@

$(BUILD)/cli/run.o: $(BUILD)/cli/paths.h

$(BUILD)/cli/%.o: cli/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -I$(BUILD)/cli $(CFLAGS) $(WFLAGS) -c -o $@ $<

$(CLI): $(CLI_OBJS) $(STLIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(STLIB) $(MNL_LIBS) -ldl -lpthread

$(TEST_CLI): $(CLI_OBJS) $(TEST_STLIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(TEST_STLIB) $(MNL_LIBS) -ldl -lpthread

FORCE:

# Example programs using libcowmap (linked statically: they run from the
# build tree and in the test VM).
$(BUILD)/examples/cowmap-%: examples/%.c $(STLIB) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WFLAGS) $(LDFLAGS) -o $@ $< $(STLIB) $(MNL_LIBS) -ldl -lpthread

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

install: install-userspace install-module
uninstall: uninstall-userspace uninstall-module

# Userspace: no kernel tree needed.  Nothing outside $(DESTDIR) is touched;
# ldconfig runs only for a real install (DESTDIR empty).
install-userspace: lib cli
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cowmap \
		$(DESTDIR)$(INCLUDEDIR)/cowmap/linux $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(COMPLETIONDIR) \
		$(DESTDIR)$(DOCDIR)
	install -m 0755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libcowmap.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcowmap.so.$(SOVERSION)
	ln -sf libcowmap.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libcowmap.so
	install -m 0644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	$(PCSUBST) lib/cowmap.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/cowmap.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/cowmap.pc
	install -m 0644 $(PRELOAD) $(DESTDIR)$(LIBDIR)/cowmap/
	install -m 0644 lib/cowmap.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 0644 uapi/linux/cowmap.h $(DESTDIR)$(INCLUDEDIR)/cowmap/linux/
	install -m 0755 $(CLI) $(DESTDIR)$(BINDIR)/
	install -m 0644 cli/cowmap.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 lib/libcowmap.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 0644 cli/completion.bash $(DESTDIR)$(COMPLETIONDIR)/cowmap
	install -m 0644 scripts/60-cowmap.rules $(DESTDIR)$(DOCDIR)/60-cowmap.rules.example
	@# The udev rule is installed only if it has an active line (it ships
	@# commented out: /dev/cowmap is 0666); see $(DOCDIR).
	if grep -qv '^[[:space:]]*\(#\|$$\)' scripts/60-cowmap.rules; then \
		install -d $(DESTDIR)$(UDEVRULESDIR) && \
		install -m 0644 scripts/60-cowmap.rules $(DESTDIR)$(UDEVRULESDIR)/; fi
	if [ -z "$(DESTDIR)" ]; then ldconfig || true; fi

uninstall-userspace:
	rm -f $(DESTDIR)$(LIBDIR)/libcowmap.so.$(VERSION) \
		$(DESTDIR)$(LIBDIR)/libcowmap.so.$(SOVERSION) \
		$(DESTDIR)$(LIBDIR)/libcowmap.so $(DESTDIR)$(LIBDIR)/libcowmap.a \
		$(DESTDIR)$(LIBDIR)/pkgconfig/cowmap.pc \
		$(DESTDIR)$(LIBDIR)/cowmap/libcowmap-preload.so \
		$(DESTDIR)$(INCLUDEDIR)/cowmap.h \
		$(DESTDIR)$(INCLUDEDIR)/cowmap/linux/cowmap.h \
		$(DESTDIR)$(BINDIR)/cowmap $(DESTDIR)$(MANDIR)/man8/cowmap.8 \
		$(DESTDIR)$(MANDIR)/man3/libcowmap.3 \
		$(DESTDIR)$(COMPLETIONDIR)/cowmap \
		$(DESTDIR)$(DOCDIR)/60-cowmap.rules.example \
		$(DESTDIR)$(UDEVRULESDIR)/60-cowmap.rules
	-rmdir $(DESTDIR)$(LIBDIR)/cowmap $(DESTDIR)$(INCLUDEDIR)/cowmap/linux \
		$(DESTDIR)$(INCLUDEDIR)/cowmap $(DESTDIR)$(DOCDIR) 2>/dev/null
	if [ -z "$(DESTDIR)" ]; then ldconfig || true; fi

# The module for KDIR, into $(DESTDIR)/lib/modules/KRELEASE/updates/;
# depmod only for a real install.  Not with 'make dkms-install' (DKMS
# installs its own copy in updates/dkms/).
# KRELEASE (default: KDIR's) given on the command line reaches kmod/ too.
install-module:
	$(MAKE) -C kmod KDIR=$(KDIR) DESTDIR=$(DESTDIR) install

uninstall-module:
	$(MAKE) -C kmod KDIR=$(KDIR) DESTDIR=$(DESTDIR) uninstall

dkms-install:
	scripts/dkms-install.sh

# The four Debian packages, built by dpkg-buildpackage from a copy of the
# tree (debian/rules runs 'make userspace' and 'make install-userspace').
deb:
	@scripts/deps.sh
	@scripts/mkdeb.sh

clean:
	rm -rf $(BUILD)
	-$(MAKE) -C kmod KDIR=$(KDIR) clean 2>/dev/null
	rm -f kmod/*.o kmod/.*.cmd
