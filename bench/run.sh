#!/bin/sh
# make bench: the project's own benchmarks, then the referee (T0 read/write-back and T1).
# Figures go to standard output; the README's tables come from one such run.
set -e
cd "$(dirname "$0")/.."
shared=${TSQ_SHARED:-../shared}
work=${TSQ_BENCH_DIR:-${TMPDIR:-/tmp}/tsq-bench}
mkdir -p "$work/in-big"
big="$work/in-big/big.xml"
[ -s "$big" ] || /usr/bin/python3 "$shared/bench/gen_ts.py" 100000 1 > "$big"
export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;"
echo "## core (C): parse, write, conditions, plan, simulation"
build/bench/bench_core "$big"
echo "## Lua: building a 100,000-step sequence and writing it"
build/bin/tsq run bench/build100k.lua
echo "## Lua: seq:plan of the 100,000-step document"
build/bin/tsq run bench/plan100k.lua "$big"
if [ -d "$shared/bench" ]; then
  echo "## referee: read and write back (T0)"
  # TSQ_BENCH_TOOLS=floor,lxml,etree,lxp,tasksequence adds the slower peers
  tools=${TSQ_BENCH_TOOLS:-floor,lxml,tasksequence}
  # (the referee exits 1 when a peer it would compare with was not run: its table is the result)
  TSQ_BENCH_DIR="$work" bash "$shared/bench/t1.sh" -0 -r 3 -t "$tools" . || true
  echo "## referee: the T1 bulk transformation"
  TSQ_BENCH_DIR="$work" bash "$shared/bench/t1.sh" -r 3 -t "$tools" . || true
  echo "## tsq apply over the fleet: --jobs 1 and --jobs 2"
  for j in 1 2; do
    rm -rf "$work/apply" && cp -r "$work/in-fleet" "$work/apply"
    /usr/bin/time -f "jobs $j: %e s, %M KiB" build/bin/tsq apply bench/t1_apply.lua "$work/apply" --jobs $j > /dev/null 2> "$work/apply.time" || true
    tail -1 "$work/apply.time"
  done
fi
