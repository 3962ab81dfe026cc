#!/bin/sh
# Runs the C test programs, the busted specs and the install checks; the last line counts
# them all: "N passed, N failed". Exit status 0 only when nothing failed.
# usage: tools/check.sh "VALGRIND PREFIX (may be empty)" TEST_PROGRAM...
# env: CHECK_SUITES  which of "c lua install" to run (default: all three)
#      CC, WERROR    passed on to tools/check_install.sh
vg=$1; shift
suites=${CHECK_SUITES:-c lua install}
passed=0; failed=0
log=${TMPDIR:-/tmp}/tsq-check.$$
want() { case " $suites " in *" $1 "*) return 0 ;; esac; return 1; }

if want c; then
  for t in "$@"; do
    # a program that hangs (a lost wakeup, say) counts as a failure after 20 minutes
    timeout 1200 $vg "$t" > "$log" 2>&1; rc=$?
    [ "$rc" -eq 124 ] && echo "FAIL $(basename "$t"): still running after 20 minutes, stopped" >> "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    [ -n "$p" ] || p=0; [ -n "$f" ] || f=0
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$f" -ne 0 ]; then grep -E -A12 'FAIL|error|Invalid|definitely|ThreadSanitizer' "$log" | head -60; fi
    echo "$(basename "$t"): $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
  done
fi

# busted: TAP output counted line by line
root=$(pwd)
if want lua && ls spec/*_spec.lua >/dev/null 2>&1; then
  export LUA_CPATH="$root/build/lib/lua/5.4/?.so;;"
  export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
  export TSQ_BIN="$root/build/bin/tsq"
  if [ -n "$vg" ]; then
    # --ignore-lua: busted would otherwise exec a fresh lua5.4 that valgrind does not follow
    $vg lua5.4 /usr/bin/busted --ignore-lua -o TAP spec > "$log" 2>&1; rc=$?
  else
    busted --lua=lua5.4 -o TAP spec > "$log" 2>&1; rc=$?
  fi
  p=$(grep -c '^ok ' "$log"); f=$(grep -c '^not ok ' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; tail -20 "$log"; fi
  if [ "$f" -ne 0 ]; then grep -A8 '^not ok ' "$log" | head -120; fi
  echo "busted: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
  unset LUA_CPATH LUA_PATH TSQ_BIN
fi

# install, build the example hosts against the installed files, run them, uninstall
if want install && [ -f tools/check_install.sh ]; then
  sh tools/check_install.sh > "$log" 2>&1; rc=$?
  grep -A40 '^FAIL' "$log" | grep -v '^install: ' | head -80
  line=$(grep -E '^install: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  p=$(echo "$line" | sed -n 's/^install: \([0-9]*\) passed.*/\1/p'); f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
  [ -n "$p" ] || p=0; [ -n "$f" ] || f=0
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; tail -20 "$log"; fi
  echo "install: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
