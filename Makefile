# tasksequence - build, test, install.
#   make            libraries, the Lua module and the tsq host under build/
#   make check      C tests and busted specs; ends with "N passed, N failed"
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

XML_CFLAGS := $(shell pkg-config --cflags libxml-2.0 2>/dev/null)
XML_LIBS := $(shell pkg-config --libs libxml-2.0 2>/dev/null)
LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null)
LUA_LIBS := $(shell pkg-config --libs lua5.4 2>/dev/null)

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2
CFLAGS_ALL = -std=c99 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(OPT) $(WARN) $(WERROR) \
	-fPIC -fvisibility=hidden -DTSQ_BUILDING -Icsrc -Ibuild/gen $(XML_CFLAGS) $(CFLAGS)

B = build
CORE_SRC := $(filter-out csrc/ltsq.c csrc/tsq_main.c, $(wildcard csrc/*.c))
GEN_SRC := $(if $(wildcard csrc/catalog.tsv),$(B)/gen/tsq_catalog.c) $(if $(wildcard csrc/messages.tsv),$(B)/gen/tsq_messages.c)
CORE_OBJ := $(patsubst csrc/%.c,$(B)/obj/%.o,$(CORE_SRC)) $(patsubst $(B)/gen/%.c,$(B)/obj/gen_%.o,$(GEN_SRC))
LIBA = $(B)/lib/libtsq.a
LIBSO = $(B)/lib/libtsq.so
LUALIBA = $(B)/lib/libtsq-lua.a
LUALIBSO = $(B)/lib/libtsq-lua.so
CORESO = $(B)/lib/lua/$(LUA_VERSION)/tasksequence/core.so
TSQ = $(B)/bin/tsq
CTESTS := $(patsubst spec/c/%.c,$(B)/test/%,$(wildcard spec/c/test_*.c))

.PHONY: rock rock-install all build deps check run-checks check-valgrind demo bench install uninstall clean

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

$(B)/obj/ltsq.o: csrc/ltsq.c csrc/ltsq.h csrc/tsq.h | $(B)/obj
	$(CC) $(CFLAGS_ALL) $(LUA_CFLAGS) -c $< -o $@

$(B)/obj/tsq_main.o: csrc/tsq_main.c csrc/ltsq.h csrc/tsq.h | $(B)/obj
	$(CC) $(CFLAGS_ALL) $(LUA_CFLAGS) -c $< -o $@

$(LIBA): $(CORE_OBJ) | $(B)/lib
	rm -f $@ && ar rcs $@ $^

$(LIBSO): $(CORE_OBJ) | $(B)/lib
	$(CC) -shared -o $@ $^ $(XML_LIBS) -lpthread $(LDFLAGS)

$(LUALIBA): $(B)/obj/ltsq.o | $(B)/lib
	rm -f $@ && ar rcs $@ $^

$(LUALIBSO): $(B)/obj/ltsq.o $(LIBSO) | $(B)/lib
	$(CC) -shared -o $@ $(B)/obj/ltsq.o -L$(B)/lib -ltsq $(LDFLAGS)

# the module carries the core inside it and is not linked against liblua
$(CORESO): $(B)/obj/ltsq.o $(CORE_OBJ) | $(B)/lib/lua/$(LUA_VERSION)/tasksequence
	$(CC) -shared -o $@ $^ $(XML_LIBS) -lpthread $(LDFLAGS)

$(TSQ): $(B)/obj/tsq_main.o $(B)/obj/ltsq.o $(LIBA) | $(B)/bin
	$(CC) -o $@ $(B)/obj/tsq_main.o $(B)/obj/ltsq.o $(LIBA) $(XML_LIBS) $(LUA_LIBS) -lpthread -lm -ldl $(LDFLAGS)

$(B)/test/%: spec/c/%.c spec/c/harness.h $(LIBA) | $(B)/test
	$(CC) $(CFLAGS_ALL) -Ispec/c $< -o $@ $(LIBA) $(XML_LIBS) -lpthread -lm

# ------------------------------------------------------------------ tests

SHARED ?= $(abspath ../shared)
export TSQ_SHARED = $(SHARED)
LUA_ENV = LUA_CPATH='$(CURDIR)/$(B)/lib/lua/$(LUA_VERSION)/?.so;;' LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;'
VALGRIND ?=

check: deps
	@sh tools/deps.sh $(CHECK_PKGS)
	@$(MAKE) --no-print-directory run-checks

run-checks: build $(CTESTS)
	@sh tools/check.sh "$(VALGRIND)" $(CTESTS)

check-valgrind: deps
	@sh tools/deps.sh valgrind $(CHECK_PKGS)
	@$(MAKE) --no-print-directory run-checks VALGRIND="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"

demo: all
	@$(LUA_ENV) $(TSQ) run examples/demo.lua

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
	@sh tools/install.sh install "$(DESTDIR)" "$(PREFIX)" "$(LUA_VERSION)"

uninstall:
	@sh tools/install.sh uninstall "$(DESTDIR)" "$(PREFIX)" "$(LUA_VERSION)"

clean:
	rm -rf $(B)

# ------------------------------------------------------------------ luarocks (build.type = make)

rock: $(CORESO)

rock-install:
	mkdir -p "$(INST_LIBDIR)/tasksequence" "$(INST_LUADIR)/tasksequence"
	cp $(CORESO) "$(INST_LIBDIR)/tasksequence/core.so"
	cp $(LUA_FILES) "$(INST_LUADIR)/tasksequence/"
