# tasksequence - build, test, install.
#   make            libraries, the Lua module and the tsq host under build/
#   make check      C tests (also under ThreadSanitizer), busted specs, install checks;
#                   ends with "N passed, N failed"
#   make check-tsan spec/c/test_threads.c and the core built with -fsanitize=thread
#   make demo       builds the shipped example sequence, prints it and its XML
#   make bench      the project's benchmarks and the referee (../shared/bench/t1.sh)
#   make install PREFIX=/usr/local DESTDIR=   /   make uninstall
# Every target first installs missing Debian packages (as root) or prints the command.

PREFIX ?= /usr/local
DESTDIR ?=
LUA_VERSION = 5.4
CC ?= cc
WERROR ?=
OPT ?= -O2 -g
PKGS = lua5.4 liblua5.4-dev libxml2-dev lua-busted pkg-config
# the specs also read documents with other parsers (LuaExpat; lxml through ../shared/bench/ts_equal.py)
CHECK_PKGS = lua-expat python3 python3-lxml
# gcc 12's ThreadSanitizer runtime, for the threads test (make check-tsan); luarocks, to
# check the rock in tools/check_install.sh
TSAN_PKGS = libtsan2
ROCK_PKGS = luarocks

XML_CFLAGS := $(shell pkg-config --cflags libxml-2.0 2>/dev/null)
XML_LIBS := $(shell pkg-config --libs libxml-2.0 2>/dev/null)
LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null)
LUA_LIBS := $(shell pkg-config --libs lua5.4 2>/dev/null)

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2
CFLAGS_ALL = -std=c99 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(OPT) $(WARN) $(WERROR) \
	-fPIC -fvisibility=hidden -DTSQ_BUILDING -Icsrc -Ibuild/gen $(XML_CFLAGS) $(CFLAGS)

B = build
# csrc/ltsq*.c are the Lua binding: compiled with the Lua headers, kept out of the core
LUA_SRC := $(wildcard csrc/ltsq*.c)
LUA_OBJ := $(patsubst csrc/%.c,$(B)/obj/%.o,$(LUA_SRC))
CORE_SRC := $(filter-out $(LUA_SRC) csrc/tsq_main.c, $(wildcard csrc/*.c))
GEN_SRC := $(if $(wildcard csrc/catalog.tsv),$(B)/gen/tsq_catalog.c) $(if $(wildcard csrc/messages.tsv),$(B)/gen/tsq_messages.c)
CORE_OBJ := $(patsubst csrc/%.c,$(B)/obj/%.o,$(CORE_SRC)) $(patsubst $(B)/gen/%.c,$(B)/obj/gen_%.o,$(GEN_SRC))
LIBA = $(B)/lib/libtsq.a
SOVERSION = 0
LIBSO = $(B)/lib/libtsq.so
LUALIBA = $(B)/lib/libtsq-lua.a
LUALIBSO = $(B)/lib/libtsq-lua.so
CORESO = $(B)/lib/lua/$(LUA_VERSION)/tasksequence/core.so
TSQ = $(B)/bin/tsq
CTESTS := $(patsubst spec/c/%.c,$(B)/test/%,$(wildcard spec/c/test_*.c))

.PHONY: rock rock-install all build deps check run-checks check-valgrind check-tsan run-tsan demo bench install uninstall clean

# Packages first, then a fresh make that sees their pkg-config flags.
all: deps
	@$(MAKE) --no-print-directory build

build: $(LIBA) $(LIBSO) $(LUALIBA) $(LUALIBSO) $(CORESO) $(TSQ)

deps:
	@sh tools/deps.sh $(PKGS)

$(B)/obj $(B)/lib $(B)/bin $(B)/gen $(B)/test $(B)/lib/lua/$(LUA_VERSION)/tasksequence:
	@mkdir -p $@

$(B)/gen/tsq_catalog.c: csrc/catalog.tsv tools/gen_catalog.lua | $(B)/gen
	lua5.4 tools/gen_catalog.lua csrc/catalog.tsv $@

$(B)/gen/tsq_messages.c: csrc/messages.tsv tools/gen_messages.lua | $(B)/gen
	lua5.4 tools/gen_messages.lua csrc/messages.tsv $@

$(B)/obj/%.o: csrc/%.c csrc/tsq.h csrc/tsq_int.h $(wildcard csrc/*.h) | $(B)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/obj/gen_%.o: $(B)/gen/%.c $(wildcard csrc/*.h) | $(B)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LUA_OBJ): $(B)/obj/%.o: csrc/%.c csrc/ltsq.h csrc/ltsq_int.h csrc/tsq.h | $(B)/obj
	$(CC) $(CFLAGS_ALL) $(LUA_CFLAGS) -c $< -o $@

$(B)/obj/tsq_main.o: csrc/tsq_main.c csrc/ltsq.h csrc/tsq.h | $(B)/obj
	$(CC) $(CFLAGS_ALL) $(LUA_CFLAGS) -c $< -o $@

$(LIBA): $(CORE_OBJ) | $(B)/lib
	rm -f $@ && ar rcs $@ $^

# the shared libraries carry their ABI version: libtsq.so.0 with its SONAME, and the
# development name libtsq.so a link to it (the same for libtsq-lua)
$(LIBSO).$(SOVERSION): $(CORE_OBJ) | $(B)/lib
	$(CC) -shared -Wl,-soname,libtsq.so.$(SOVERSION) -o $@ $^ $(XML_LIBS) -lpthread $(LDFLAGS)

$(LIBSO): $(LIBSO).$(SOVERSION)
	ln -sf libtsq.so.$(SOVERSION) $@

$(LUALIBA): $(LUA_OBJ) | $(B)/lib
	rm -f $@ && ar rcs $@ $^

$(LUALIBSO).$(SOVERSION): $(LUA_OBJ) $(LIBSO) | $(B)/lib
	$(CC) -shared -Wl,-soname,libtsq-lua.so.$(SOVERSION) -o $@ $(LUA_OBJ) -L$(B)/lib -ltsq $(LDFLAGS)

$(LUALIBSO): $(LUALIBSO).$(SOVERSION)
	ln -sf libtsq-lua.so.$(SOVERSION) $@

# the module carries the core inside it and is not linked against liblua
$(CORESO): $(LUA_OBJ) $(CORE_OBJ) | $(B)/lib/lua/$(LUA_VERSION)/tasksequence
	$(CC) -shared -o $@ $^ $(XML_LIBS) -lpthread $(LDFLAGS)

$(TSQ): $(B)/obj/tsq_main.o $(LUA_OBJ) $(LIBA) | $(B)/bin
	$(CC) -o $@ $(B)/obj/tsq_main.o $(LUA_OBJ) $(LIBA) $(XML_LIBS) $(LUA_LIBS) -lpthread -lm -ldl $(LDFLAGS)

$(B)/test/%: spec/c/%.c spec/c/harness.h spec/c/spy.h $(LIBA) | $(B)/test
	$(CC) $(CFLAGS_ALL) -Ispec/c $< -o $@ $(LIBA) $(XML_LIBS) -lpthread -lm

# ------------------------------------------------------------------ tests

SHARED ?= $(abspath ../shared)
export TSQ_SHARED = $(SHARED)
LUA_ENV = LUA_CPATH='$(CURDIR)/$(B)/lib/lua/$(LUA_VERSION)/?.so;;' LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;'
VALGRIND ?=

# defined before run-checks: make reads a rule's prerequisites when it reads the rule
TSAN_DIR = $(B)/tsan
TSAN_CFLAGS = $(CFLAGS_ALL) -fsanitize=thread
TSAN_OBJ := $(patsubst $(B)/obj/%,$(TSAN_DIR)/obj/%,$(CORE_OBJ))
TSAN_TEST = $(TSAN_DIR)/test_threads_tsan $(TSAN_DIR)/test_read_thread_tsan $(TSAN_DIR)/test_read_random_tsan

# run-checks: the C tests, the threads test under ThreadSanitizer (not with valgrind: the two
# do not mix), the busted specs, then tools/check_install.sh (install, build the example
# hosts against the installed files, run them, uninstall); tools/check.sh sums them all.
check: deps
	@sh tools/deps.sh $(CHECK_PKGS) $(TSAN_PKGS) $(ROCK_PKGS)
	@$(MAKE) --no-print-directory run-checks

run-checks: build $(CTESTS) $(if $(VALGRIND),,$(TSAN_TEST))
	@CC="$(CC)" WERROR="$(WERROR)" TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
		sh tools/check.sh "$(VALGRIND)" $(CTESTS) $(if $(VALGRIND),,$(TSAN_TEST))

check-valgrind: deps
	@sh tools/deps.sh valgrind $(CHECK_PKGS) $(ROCK_PKGS)
	@TSQ_NO_POOL=1 $(MAKE) --no-print-directory run-checks VALGRIND="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"

check-tsan: deps
	@sh tools/deps.sh $(TSAN_PKGS)
	@$(MAKE) --no-print-directory run-tsan

run-tsan: $(TSAN_TEST)
	@TSAN_OPTIONS="halt_on_error=1 exitcode=66" CHECK_SUITES=c sh tools/check.sh "" $(TSAN_TEST)

# ThreadSanitizer build: the core objects again, instrumented, under build/tsan

$(TSAN_DIR)/obj/%.o: csrc/%.c csrc/tsq.h csrc/tsq_int.h $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(TSAN_CFLAGS) -c $< -o $@

$(TSAN_DIR)/obj/gen_%.o: $(B)/gen/%.c $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(TSAN_CFLAGS) -c $< -o $@

$(TSAN_DIR)/%_tsan: spec/c/%.c spec/c/harness.h spec/c/spy.h $(TSAN_OBJ)
	$(CC) $(TSAN_CFLAGS) -Ispec/c $< -o $@ $(TSAN_OBJ) $(XML_LIBS) -lpthread -lm

demo: all
	@$(LUA_ENV) $(TSQ) run examples/demo.lua
	@mkdir -p $(B)/examples
	@for e in bare_metal in_place_upgrade drivers_by_model; do \
	  $(LUA_ENV) $(TSQ) build examples/$$e.lua -o $(B)/examples/$$e.xml && echo "wrote $(B)/examples/$$e.xml" || exit 1; \
	done

bench: all
	@$(MAKE) --no-print-directory $(B)/bench/bench_core
	@sh bench/run.sh

$(B)/bench/bench_core: bench/bench_core.c $(LIBA)
	@mkdir -p $(B)/bench
	$(CC) $(CFLAGS_ALL) $< -o $@ $(LIBA) $(XML_LIBS) -lpthread -lm

# ------------------------------------------------------------------ install

LIBDIR = $(PREFIX)/lib
INCDIR = $(PREFIX)/include
LMOD = $(PREFIX)/share/lua/$(LUA_VERSION)
CMOD = $(PREFIX)/lib/lua/$(LUA_VERSION)
PCDIR = $(LIBDIR)/pkgconfig
MANDIR = $(PREFIX)/share/man/man1
LUA_FILES := $(wildcard lua/tasksequence/*.lua)

install: all
	@sh tools/install.sh install "$(DESTDIR)" "$(PREFIX)" "$(LUA_VERSION)" "$(SOVERSION)"

uninstall:
	@sh tools/install.sh uninstall "$(DESTDIR)" "$(PREFIX)" "$(LUA_VERSION)" "$(SOVERSION)"

clean:
	rm -rf $(B)

# ------------------------------------------------------------------ luarocks (build.type = make)

# luarocks passes LUA_INCDIR, the headers of the Lua it builds for; without it, pkg-config's
# lua5.4 flags are used
rock: LUA_CFLAGS := $(if $(LUA_INCDIR),-I$(LUA_INCDIR),$(LUA_CFLAGS))
rock: $(CORESO)

rock-install:
	mkdir -p "$(INST_LIBDIR)/tasksequence" "$(INST_LUADIR)/tasksequence"
	cp $(CORESO) "$(INST_LIBDIR)/tasksequence/core.so"
	cp $(LUA_FILES) "$(INST_LUADIR)/tasksequence/"
