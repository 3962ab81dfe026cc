#!/bin/sh
# The installed files, checked the way their users meet them. Two installs:
#  1. `make install DESTDIR=STAGE PREFIX=/opt/tsq-check` (a packager's staging tree): exactly
#     the expected files, .pc files naming PREFIX; `make uninstall` removes exactly those and
#     leaves a foreign file in the same directories alone.
#  2. `make install PREFIX=TMP`: the example hosts (examples/host_c.c, examples/host_lua.c)
#     compiled with nothing but `pkg-config --cflags --libs tsq` / `tsq-lua` from that
#     prefix (host_c also statically), run and compared with examples/data/*.out; the
#     installed `tsq` and the installed Lua module (in stock lua5.4); then uninstalled.
#  3. `luarocks make` of rockspec/tasksequence-scm-1.rockspec into a temporary tree.
# Each check counts; the last line is "install: N passed, N failed" for tools/check.sh.
# usage: tools/check_install.sh   (from the project root; env: CC, WERROR, MAKE)
set -u
cc=${CC:-cc}
make=${MAKE:-make}
lv=5.4
top=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tsq-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0 failed=0

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL install: $1"; }
# ok NAME COMMAND...: passes when the command exits 0 (its output is shown when it does not)
ok() {
  name=$1; shift
  if "$@" > "$tmp/log" 2>&1; then pass; else fail "$name"; sed 's/^/  /' "$tmp/log" | head -30; fi
}
# same NAME EXPECTED_FILE ACTUAL_FILE
same() {
  if diff -u "$2" "$3" > "$tmp/diff" 2>&1; then pass; else fail "$1"; sed 's/^/  /' "$tmp/diff" | head -40; fi
}
files_under() { (cd "$1" 2>/dev/null && find . -type f | sort); }
links_under() { (cd "$1" 2>/dev/null && find . -type l -printf '%p -> %l\n' | sort); }
# the files make install puts under PREFIX, plus the foreign ones given as arguments
expected_files() {
  {
    printf '%s\n' bin/tsq include/tsq.h include/ltsq.h lib/libtsq.a lib/libtsq.so.0 lib/libtsq-lua.a \
      lib/libtsq-lua.so.0 "lib/lua/$lv/tasksequence/core.so" lib/pkgconfig/tsq.pc lib/pkgconfig/tsq-lua.pc \
      share/man/man1/tsq.1 "$@"
    for f in lua/tasksequence/*.lua; do echo "share/lua/$lv/${f#lua/}"; done
  } | sed 's|^|./|' | sort
}
version=$(sed -n 's/^#define TSQ_VERSION "\(.*\)"/\1/p' csrc/tsq.h)

# ------------------------------------------------------------------ 1. DESTDIR staging

stage=$tmp/stage prefix=/opt/tsq-check
root=$stage$prefix
foreign="lib/libother.so.1 share/lua/$lv/other.lua include/other.h"
for f in $foreign; do mkdir -p "$(dirname "$root/$f")" && echo foreign > "$root/$f"; done
ok "make install DESTDIR PREFIX" $make --no-print-directory install DESTDIR="$stage" PREFIX="$prefix"
expected_files $foreign > "$tmp/expected"
files_under "$root" > "$tmp/actual"
same "installed files (DESTDIR)" "$tmp/expected" "$tmp/actual"
printf '%s\n' "./lib/libtsq-lua.so -> libtsq-lua.so.0" "./lib/libtsq.so -> libtsq.so.0" > "$tmp/expected"
links_under "$root" > "$tmp/actual"
same "the development names link to the versioned libraries" "$tmp/expected" "$tmp/actual"
soname() { objdump -p "$1" | awk '$1 == "SONAME" { print $2 }'; }
ok "libtsq.so.0 has the SONAME libtsq.so.0" test "$(soname "$root/lib/libtsq.so.0")" = libtsq.so.0
ok "libtsq-lua.so.0 has the SONAME libtsq-lua.so.0" test "$(soname "$root/lib/libtsq-lua.so.0")" = libtsq-lua.so.0
ok "tsq.pc names PREFIX, not DESTDIR" grep -qx "prefix=$prefix" "$root/lib/pkgconfig/tsq.pc"
ok "tsq-lua.pc requires tsq and lua5.4" grep -qx "Requires: tsq lua5.4" "$root/lib/pkgconfig/tsq-lua.pc"
ok "make uninstall DESTDIR PREFIX" $make --no-print-directory uninstall DESTDIR="$stage" PREFIX="$prefix"
printf '%s\n' $foreign | sed 's|^|./|' | sort > "$tmp/expected"
files_under "$root" > "$tmp/actual"
same "uninstall removes exactly the installed files" "$tmp/expected" "$tmp/actual"
ok "uninstall removes the module directories" test ! -e "$root/lib/lua/$lv/tasksequence" -a ! -e "$root/share/lua/$lv/tasksequence"

# ------------------------------------------------------------------ 2. hosts against PREFIX

root=$tmp/prefix
ok "make install PREFIX" $make --no-print-directory install PREFIX="$root"
expected_files > "$tmp/expected"
files_under "$root" > "$tmp/actual"
same "installed files (PREFIX)" "$tmp/expected" "$tmp/actual"

export PKG_CONFIG_PATH="$root/lib/pkgconfig"
ok "pkg-config --modversion tsq tsq-lua" test "$(pkg-config --modversion tsq tsq-lua | tr '\n' ' ')" = "$version $version "
# no path into the source tree may leak into a host's build
flags="$(pkg-config --cflags --libs tsq-lua) $(pkg-config --static --libs tsq)"
not_in_flags() { case "$flags" in *"$1"*) echo "$flags"; return 1 ;; esac; }
ok "pkg-config flags do not name the source tree" not_in_flags "$top"
first_flag() { set -- $(pkg-config --cflags tsq); test "$1" = "-I$root/include"; }
ok "pkg-config --cflags tsq names the prefix first" first_flag

hostflags="-std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra ${WERROR:-}"
# shellcheck disable=SC2046,SC2086 # pkg-config output is a list of words
ok "build host_c (shared libtsq)" $cc $hostflags -o "$tmp/host_c" examples/host_c.c \
  $(pkg-config --cflags --libs tsq) -Wl,-rpath,"$root/lib"
# static: libtsq.a and what it needs, which only --static lists (Libs.private, Requires.private)
# shellcheck disable=SC2046,SC2086
ok "build host_c (static libtsq)" $cc $hostflags -o "$tmp/host_c_static" examples/host_c.c \
  $(pkg-config --cflags tsq) $(pkg-config --static --libs tsq | sed 's/-ltsq\b/-l:libtsq.a/')
no_shared_tsq() { ! ldd "$1" | grep libtsq; }
ok "host_c (static) does not load libtsq.so" no_shared_tsq "$tmp/host_c_static"
# shellcheck disable=SC2046,SC2086
ok "build host_lua (shared libtsq-lua)" $cc $hostflags -o "$tmp/host_lua" examples/host_lua.c \
  $(pkg-config --cflags --libs tsq-lua) -Wl,-rpath,"$root/lib"

for m in dell_laptop lenovo_desktop; do
  "$tmp/host_c" examples/data/host_sample.xml "examples/data/$m.machine" > "$tmp/out" 2>&1
  echo "exit $?" >> "$tmp/out"
  same "host_c on $m" "examples/data/host_c_$m.out" "$tmp/out"
done
"$tmp/host_c_static" examples/data/host_sample.xml examples/data/dell_laptop.machine > "$tmp/out" 2>&1
echo "exit $?" >> "$tmp/out"
same "host_c (static) on dell_laptop" examples/data/host_c_dell_laptop.out "$tmp/out"
"$tmp/host_c" examples/data/host_sample.xml examples/data/missing.machine > "$tmp/out" 2>&1
ok "host_c reports a missing machine file" grep -q "missing.machine: No such file" "$tmp/out"

# the Lua half of the module from the prefix; no core.so on the path: the host preloads its own
LUA_PATH="$root/share/lua/$lv/?.lua;$root/share/lua/$lv/?/init.lua" LUA_CPATH="$tmp/none/?.so" \
  "$tmp/host_lua" examples/data/host_policy.lua > "$tmp/out" 2>&1
echo "exit $?" >> "$tmp/out"
same "host_lua" examples/data/host_lua.out "$tmp/out"
echo 'return 1, 2, 3' > "$tmp/bad.lua"
LUA_PATH="$root/share/lua/$lv/?.lua;$root/share/lua/$lv/?/init.lua" "$tmp/host_lua" "$tmp/bad.lua" > "$tmp/out" 2>&1
echo "exit $?" >> "$tmp/out"
ok "host_lua refuses a script that returns no sequence" grep -q "tasksequence.step expected, got number" "$tmp/out"
ok "... and exits with status 1" grep -qx "exit 1" "$tmp/out"

# the installed tsq and module
export LUA_PATH="$root/share/lua/$lv/?.lua;$root/share/lua/$lv/?/init.lua"
export LUA_CPATH="$root/lib/lua/$lv/?.so"
"$root/bin/tsq" --help > "$tmp/out" 2>&1
ok "tsq --help" grep -q "^usage: tsq COMMAND" "$tmp/out"
cat > "$tmp/one.lua" <<'EOF'
local ts = require "tasksequence"
local s = ts.sequence "x" { ts.group "g" { ts.RunCommandLine "c" { CommandLine = "cmd /c exit 0" } } }
print(ts.version, #s, s:run().succeeded, package.searchpath("tasksequence", package.path))
EOF
"$root/bin/tsq" run "$tmp/one.lua" > "$tmp/out" 2>&1
echo "$version	1	true	$root/share/lua/$lv/tasksequence/init.lua" > "$tmp/expected"
same "tsq run with the installed module" "$tmp/expected" "$tmp/out"
lua5.4 -e 'local ts = require "tasksequence"; print(ts.version, package.searchpath("tasksequence.core", package.cpath))' \
  > "$tmp/out" 2>&1
echo "$version	$root/lib/lua/$lv/tasksequence/core.so" > "$tmp/expected"
same "lua5.4 loads the installed module" "$tmp/expected" "$tmp/out"
ok "man page" grep -q "^usage: tsq COMMAND" "$root/share/man/man1/tsq.1"

ok "make uninstall PREFIX" $make --no-print-directory uninstall PREFIX="$root"
files_under "$root" > "$tmp/actual"
: > "$tmp/expected"
same "nothing left after uninstall" "$tmp/expected" "$tmp/actual"

# ------------------------------------------------------------------ 3. the rock

# offline, from this checkout, into a tree of its own; then stock lua5.4 loads it from there
unset LUA_PATH LUA_CPATH # luarocks itself is a Lua program
rocks=$tmp/rocks
ok "luarocks make" luarocks --lua-version="$lv" --tree="$rocks" make rockspec/tasksequence-scm-1.rockspec
LUA_PATH="$rocks/share/lua/$lv/?.lua;$rocks/share/lua/$lv/?/init.lua" LUA_CPATH="$rocks/lib/lua/$lv/?.so" \
  lua5.4 -e 'local ts = require "tasksequence"; print(ts.version, package.searchpath("tasksequence.core", package.cpath))' \
  > "$tmp/out" 2>&1
echo "$version	$rocks/lib/lua/$lv/tasksequence/core.so" > "$tmp/expected"
same "lua5.4 loads the rock" "$tmp/expected" "$tmp/out"

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
