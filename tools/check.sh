#!/bin/sh
# Runs the C test programs and the busted specs; the last line counts both:
# "N passed, N failed". Exit status 0 only when nothing failed.
# usage: tools/check.sh "VALGRIND PREFIX (may be empty)" TEST_PROGRAM...
vg=$1; shift
passed=0; failed=0
log=${TMPDIR:-/tmp}/tsq-check.$$
for t in "$@"; do
  $vg "$t" > "$log" 2>&1; rc=$?
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  [ -n "$p" ] || p=0; [ -n "$f" ] || f=0
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$f" -ne 0 ]; then grep -E 'FAIL|error|Invalid|definitely' "$log" | head -40; fi
  echo "$(basename "$t"): $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
done
# busted: TAP output counted line by line
root=$(pwd)
export LUA_CPATH="$root/build/lib/lua/5.4/?.so;;"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
export TSQ_BIN="$root/build/bin/tsq"
if ls spec/*_spec.lua >/dev/null 2>&1; then
  if [ -n "$vg" ]; then
    $vg lua5.4 /usr/bin/busted --lua=lua5.4 -o TAP spec > "$log" 2>&1; rc=$?
  else
    busted --lua=lua5.4 -o TAP spec > "$log" 2>&1; rc=$?
  fi
  p=$(grep -c '^ok ' "$log"); f=$(grep -c '^not ok ' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; tail -20 "$log"; fi
  if [ "$f" -ne 0 ]; then grep -A8 '^not ok ' "$log" | head -120; fi
  echo "busted: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
