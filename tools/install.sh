#!/bin/sh
# install / uninstall exactly the files the build produces.
# usage: tools/install.sh install|uninstall DESTDIR PREFIX LUA_VERSION SOVERSION
set -e
mode=$1 dest=$2 prefix=$3 lv=$4 so=$5
root="$dest$prefix"
lua_files=$(cd lua && ls tasksequence/*.lua)
# each line: SOURCE TARGET MODE (relative to PREFIX); MODE "link": TARGET is a symbolic
# link to SOURCE (the development names of the shared libraries)
manifest() {
  echo "build/lib/libtsq.a lib/libtsq.a 644"
  echo "build/lib/libtsq.so.$so lib/libtsq.so.$so 755"
  echo "libtsq.so.$so lib/libtsq.so link"
  echo "build/lib/libtsq-lua.a lib/libtsq-lua.a 644"
  echo "build/lib/libtsq-lua.so.$so lib/libtsq-lua.so.$so 755"
  echo "libtsq-lua.so.$so lib/libtsq-lua.so link"
  echo "csrc/tsq.h include/tsq.h 644"
  echo "csrc/ltsq.h include/ltsq.h 644"
  echo "build/lib/lua/$lv/tasksequence/core.so lib/lua/$lv/tasksequence/core.so 755"
  for f in $lua_files; do echo "lua/$f share/lua/$lv/$f 644"; done
  echo "build/bin/tsq bin/tsq 755"
  echo "build/tsq.pc lib/pkgconfig/tsq.pc 644"
  echo "build/tsq-lua.pc lib/pkgconfig/tsq-lua.pc 644"
  echo "build/tsq.1 share/man/man1/tsq.1 644"
}
if [ "$mode" = install ]; then
  version=$(sed -n 's/^#define TSQ_VERSION "\(.*\)"/\1/p' csrc/tsq.h)
  for pc in tsq tsq-lua; do
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "tools/$pc.pc.in" > "build/$pc.pc"
  done
  sh tools/manpage.sh build/bin/tsq "$version" > build/tsq.1
  manifest | while read -r src dst m; do
    mkdir -p "$(dirname "$root/$dst")"
    if [ "$m" = link ]; then
      ln -sfn "$src" "$root/$dst.tmp.$$" && mv -f "$root/$dst.tmp.$$" "$root/$dst"
    else
      cp "$src" "$root/$dst.tmp.$$" && chmod "$m" "$root/$dst.tmp.$$" && mv -f "$root/$dst.tmp.$$" "$root/$dst"
    fi
    echo "installed $prefix/$dst"
  done
else
  manifest | while read -r src dst m; do
    if [ -e "$root/$dst" ] || [ -L "$root/$dst" ]; then rm -f "$root/$dst"; echo "removed $prefix/$dst"; fi
  done
  for d in "lib/lua/$lv/tasksequence" "share/lua/$lv/tasksequence"; do rmdir "$root/$d" 2>/dev/null || true; done
fi
