-- tasksequence.apply: `tsq apply SCRIPT FILE_OR_DIR...`, one script over many documents.
--
-- The script returns function(seq, path); returning false leaves the document alone,
-- anything else saves it (atomically) when its XML changed. One line per document, in the
-- order of the file list whatever --jobs is, then "N read, N changed, N unchanged, N failed".
-- Failures go to stderr, the rest to stdout; on a terminal a progress bar is drawn on
-- stderr below the lines (cleared before each line is written, redrawn after).
--
-- Without --continue-on-error the run stops at the first failing file, and the files after
-- it are neither saved nor reported, with --jobs N as with one job: a worker that finished a
-- later file first waits (apply.one's gate) until every earlier file has succeeded.
local ts = require "tasksequence"
local diff = require "tasksequence.diff"
local cli = require "tasksequence.cli"

local apply = {}
local fail = cli.fail

local OPTS = { ["--jobs"] = "value", ["-j"] = "value", ["--dry-run"] = "flag", ["--diff"] = "flag",
  ["--backup"] = "value", ["--continue-on-error"] = "flag" }
local function host()
  local ok, h = pcall(require, "tasksequence.host")
  return ok and h or nil
end

-- the host's thread limit; without the tsq host there are no worker threads to limit
local MAX_JOBS = (host() or {}).max_jobs or 1

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Every *.xml file below dir, sorted, appended to out.
local function list_xml(dir, out)
  local p = assert(io.popen("find " .. shell_quote(dir) .. " -type f -name '*.xml' -print0 2>/dev/null"))
  local all = p:read("a")
  p:close()
  local found = {}
  for f in all:gmatch("([^%z]+)") do found[#found + 1] = f end
  table.sort(found)
  table.move(found, 1, #found, #out + 1, out)
end

local function is_dir(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local ok, _, code = f:read(1)
  f:close()
  return ok == nil and code == 21 -- EISDIR
end

-- Permission bits of a file (nil when unknown).
local function file_mode(path)
  local h = host()
  if h and h.mode then return h.mode(path) end
  local p = io.popen("stat -c %a " .. shell_quote(path) .. " 2>/dev/null")
  local m = p and p:read("l")
  if p then p:close() end
  return m and tonumber(m, 8)
end

local read_file = cli.read_file

-- The command line without listing files: { script, inputs, opts, jobs, keep_going }.
function apply.parse(args)
  local opts, pos = cli.parse_opts(args, OPTS)
  if #pos < 2 then fail("SCRIPT and at least one FILE_OR_DIR expected") end
  local jv = opts.jobs or opts.j or "1"
  local jobs = math.tointeger(tonumber(jv))
  if not jobs or jobs < 1 or not jv:match("^%d+$") then fail("--jobs wants a positive integer, not " .. jv) end
  local script = table.remove(pos, 1)
  return { script = script, inputs = pos, opts = opts, jobs = math.min(jobs, MAX_JOBS),
    keep_going = opts.continue_on_error or false }
end

-- parse, plus the files: directories are walked for *.xml in sorted order.
function apply.prepare(args)
  local prep = apply.parse(args)
  local files = {}
  for _, p in ipairs(prep.inputs) do
    if is_dir(p) then list_xml(p, files) else files[#files + 1] = p end
  end
  prep.files = files
  return prep
end

-- Runs the script file once: it returns function(seq, path).
function apply.load_script(script)
  local chunk, err = loadfile(script)
  if not chunk then fail(err) end
  local ok, fn = pcall(chunk)
  if not ok then fail(script .. ": " .. tostring(fn)) end
  if type(fn) ~= "function" then fail(script .. ": the script must return function(seq, path)") end
  return fn
end

-- One document: { path, status = "changed"|"unchanged"|"failed"|"skipped", message, diff }.
-- "changed" under --dry-run means "would change" and nothing is written. gate (optional)
-- is asked just before writing; false means "an earlier file failed": status "skipped".
function apply.one(fn, path, opts, gate)
  opts = opts or {}
  local res = { path = path }
  local old, rerr = read_file(path)
  if not old then
    res.status, res.message = "failed", rerr
    return res
  end
  local seq, perr = ts.parse(old, path)
  if not seq then
    res.status, res.message = "failed", perr
    return res
  end
  local ok, ret = xpcall(fn, function(m) return tostring(m) end, seq, path)
  if not ok then
    res.status, res.message = "failed", "script error: " .. ret
    return res
  end
  if ret == false then
    res.status = "unchanged"
    return res
  end
  local okx, new = pcall(seq.to_xml, seq)
  if not okx or type(new) ~= "string" then
    res.status, res.message = "failed", "can not write: " .. tostring(new)
    return res
  end
  if new == old then
    res.status = "unchanged"
    return res
  end
  res.status = "changed"
  if opts.diff then
    local before = ts.parse(old, path)
    if before then res.diff = diff.format(diff.compare(before, seq), "  ") end
  end
  if opts.dry_run then return res end
  if gate and not gate() then
    res.status = "skipped"
    return res
  end
  local mode = file_mode(path)
  if mode and mode & 146 == 0 then -- 0222: nobody may write it (root could, so ask the mode)
    res.status, res.message = "failed", "read-only file, left unchanged"
    return res
  end
  if opts.backup then
    local f, ferr = io.open(path .. opts.backup, "wb")
    local wok = f and f:write(old)
    if f then f:close() end
    if not wok then
      res.status, res.message = "failed", "can not write the backup: " .. tostring(ferr or (path .. opts.backup))
      return res
    end
  end
  local sok, serr = seq:save(path)
  if not sok then
    res.status, res.message = "failed", tostring(serr)
    return res
  end
  return res
end

-- 1 changed, 0 unchanged (or skipped: never reported), -1 failed
local OUTCOME = { changed = 1, unchanged = 0, skipped = 0, failed = -1 }

-- The report of one document: "changed PATH" (+ the diff lines), "unchanged PATH",
-- "would change PATH" or "failed PATH: message".
function apply.line(res, opts)
  if res.status == "failed" then
    local m = res.message or "failed"
    if m:sub(1, #res.path) == res.path then m = m:sub(#res.path + 1):gsub("^:%s*", "") end
    return "failed " .. res.path .. ": " .. m
  end
  if res.status == "skipped" then return "" end
  local word = res.status
  if res.status == "changed" and opts.dry_run then word = "would change" end
  local line = word .. " " .. res.path
  if res.diff and res.diff ~= "" then line = line .. "\n" .. res.diff:gsub("\n$", "") end
  return line
end

-- For the host's worker threads, one per Lua state: function(path, gate) -> line, outcome.
function apply.worker(args)
  local prep = apply.parse(args)
  local fn = apply.load_script(prep.script)
  return function(path, gate)
    local res = apply.one(fn, path, prep.opts, gate)
    return apply.line(res, prep.opts), OUTCOME[res.status]
  end
end

-- Writes the per-file lines as they come (in file order) and the summary.
-- reporter.file(line, outcome); reporter.finish() -> exit status.
function apply.reporter(prep, tty)
  local total = #prep.files
  local n, changed, unchanged, failed = 0, 0, 0, 0
  local bar = false -- the bar is on screen
  local function clear()
    if bar then io.stderr:write("\r\27[K") end
    bar = false
  end
  local function draw()
    local w = 30
    local fill = total > 0 and w * n // total or w
    io.stderr:write(string.format("\r\27[K[%s%s] %d/%d", ("#"):rep(fill), (" "):rep(w - fill), n, total))
    io.stderr:flush()
    bar = true
  end
  local r = {}
  function r.file(line, outcome)
    n = n + 1
    if outcome > 0 then changed = changed + 1 elseif outcome == 0 then unchanged = unchanged + 1 else failed = failed + 1 end
    if tty then clear() end
    if line and line ~= "" then
      local f = outcome < 0 and io.stderr or io.stdout
      f:write(line, "\n")
      f:flush() -- keeps stdout and stderr lines in order when both are one terminal
    end
    if tty then draw() end
  end
  function r.finish()
    if tty then clear() end
    io.stdout:write(string.format("%d read, %d %s, %d unchanged, %d failed\n", n, changed,
      prep.opts.dry_run and "would change" or "changed", unchanged, failed))
    io.stdout:flush()
    return failed > 0 and 1 or 0
  end
  return r
end

-- `tsq apply ARGS...` -> exit status.
function apply.main(args)
  local prep = apply.prepare(args)
  local fn = apply.load_script(prep.script)
  local h = host()
  local rep = apply.reporter(prep, h and h.isatty and h.isatty(2) or false)
  if prep.jobs > 1 and #prep.files > 1 and h and h.parallel_apply then
    -- worker threads, each with its own Lua state running apply.worker(args); the host
    -- calls back here, in this state, once per file in file order
    local ok, err = h.parallel_apply(args, prep.files, prep.jobs, prep.keep_going,
      function(_, line, outcome) rep.file(line, outcome) end)
    if not ok then fail(tostring(err)) end
  else
    for _, path in ipairs(prep.files) do
      local res = apply.one(fn, path, prep.opts)
      rep.file(apply.line(res, prep.opts), OUTCOME[res.status])
      if res.status == "failed" and not prep.keep_going then break end
    end
  end
  return rep.finish()
end

return apply
