-- tasksequence.cli: the subcommands of the `tsq` host.
-- cli.main(cmd, args) -> exit status. Expected failures (a missing file, a bad
-- option) print "tsq CMD: message" on stderr and return 2; errors in documents are
-- reported per file.
local ts = require "tasksequence"
local query = require "tasksequence.query"
local diff = require "tasksequence.diff"

query.install(ts)

local cli = {}

local function eprintf(fmt, ...) io.stderr:write(string.format(fmt, ...)) end

-- An expected failure: raised as a table so main can print it without a traceback.
local function fail(msg) error(setmetatable({ msg = msg }, { __tostring = function(e) return e.msg end }), 0) end

local function isatty(fd)
  local ok, host = pcall(require, "tasksequence.host")
  if ok and host.isatty then return host.isatty(fd) end
  return false
end

-- Permission bits of a file (nil when unknown).
local function file_mode(path)
  local ok, host = pcall(require, "tasksequence.host")
  if ok and host.mode then return host.mode(path) end
  local p = io.popen("stat -c %a " .. string.format("%q", path):gsub("%$", "\\$"):gsub("`", "\\`") .. " 2>/dev/null")
  local m = p and p:read("l")
  if p then p:close() end
  return m and tonumber(m, 8)
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s, rerr = f:read("a")
  f:close()
  if not s then return nil, path .. ": " .. tostring(rerr) end
  return s
end

local function load_seq(path)
  local seq, err = ts.load(path)
  if not seq then fail(err or (path .. ": can not be read")) end
  return seq
end

-- Options: spec maps "--name" to "flag" | "value" | "list"; returns opts, positionals.
local function parse_opts(cmd, args, spec)
  local opts, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-?[%w-]+)=(.*)$")
    name = name or a
    local kind = spec[name]
    if a == "--" then
      for k = i + 1, #args do pos[#pos + 1] = args[k] end
      break
    elseif kind then
      local key = name:gsub("^%-+", ""):gsub("-", "_")
      if kind == "flag" then
        opts[key] = true
      else
        local v = inline
        if v == nil then
          i = i + 1
          v = args[i]
          if v == nil then fail(cmd .. ": " .. name .. " wants a value") end
        end
        if kind == "list" then
          opts[key] = opts[key] or {}
          table.insert(opts[key], v)
        else
          opts[key] = v
        end
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      fail(cmd .. ": unknown option " .. a)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

-- ------------------------------------------------------------------ the tree

local function depth_of(step) return step.depth end -- the core's tsq_node_depth

-- Every step of seq in document order with depth, name path and index path.
function cli.walk(seq)
  local out, counters, names = {}, {}, {}
  for step in seq:steps() do
    local d = depth_of(step)
    counters[d] = (counters[d] or 0) + 1
    for k = d + 1, #counters do counters[k] = nil end
    for k = d + 1, #names do names[k] = nil end
    names[d] = step.Name or ""
    local idx = {}
    for k = 1, d do idx[k] = tostring(counters[k] or 1) end
    out[#out + 1] = { step = step, depth = d, path = table.concat(names, "/", 1, d), index = table.concat(idx, ".") }
  end
  return out
end

local function short_type(step)
  if step.kind == "group" then return "group" end
  local t = step.type or ""
  if t == "" then return "step" end
  return (t:gsub("^SMS_TaskSequence_(.-)Action$", "%1"))
end

local function cond_text(step)
  local c = step.Condition
  if c == nil then return nil end
  return tostring(c)
end

-- ------------------------------------------------------------------ show

local function cmd_show(args)
  local _, pos = parse_opts("show", args, {})
  if #pos ~= 1 then fail("show: one FILE expected") end
  local seq = load_seq(pos[1])
  local out = {}
  local title = seq.Name
  out[#out + 1] = (title and title ~= "" and title or pos[1])
  for _, e in ipairs(cli.walk(seq)) do
    local s = e.step
    local ind = string.rep("  ", e.depth)
    local flags = {}
    if s.Enabled == false then flags[#flags + 1] = "disabled" end
    if s.ContinueOnError then flags[#flags + 1] = "continue on error" end
    local line = string.format("%s%s %s [%s]%s", ind, e.index, s.Name or "", short_type(s),
      #flags > 0 and (" (" .. table.concat(flags, ", ") .. ")") or "")
    out[#out + 1] = line
    local c = cond_text(s)
    if c then out[#out + 1] = ind .. "    if " .. c end
  end
  io.write(table.concat(out, "\n"), "\n")
  return 0
end

-- ------------------------------------------------------------------ environments

local function parse_var(v)
  local name, value = v:match("^([^=]+)=(.*)$")
  if not name then fail("--var wants NAME=VALUE, got " .. v) end
  return name, value
end

local function make_env(opts)
  local desc = {}
  if opts.machine then
    local chunk, err = loadfile(opts.machine)
    if not chunk then fail(err) end
    local ok, t = pcall(chunk)
    if not ok then fail(opts.machine .. ": " .. tostring(t)) end
    if type(t) ~= "table" then fail(opts.machine .. ": the machine file must return a table") end
    for k, v in pairs(t) do desc[k] = v end
  end
  local vars = {}
  for k, v in pairs(desc.variables or {}) do vars[k] = v end
  for _, v in ipairs(opts.var or {}) do
    local n, val = parse_var(v)
    vars[n] = val
  end
  desc.variables = vars
  return ts.environment(desc)
end

-- ------------------------------------------------------------------ eval

local function plan_state(e)
  local s = e.state
  if s == true or s == 1 or s == "run" then return "run" end
  if type(s) == "string" then return s end
  return ({ [2] = "skip", [3] = "disabled", [4] = "skip", [5] = "error" })[s] or tostring(s)
end

local function cmd_eval(args)
  local opts, pos = parse_opts("eval", args, { ["--var"] = "list", ["--machine"] = "value" })
  if #pos ~= 1 then fail("eval: one FILE expected") end
  local seq = load_seq(pos[1])
  local env = make_env(opts)
  local plan, err = seq:plan(env)
  if not plan then fail(pos[1] .. ": " .. tostring(err)) end
  local index = {}
  for i, e in ipairs(cli.walk(seq)) do index[i] = e end
  local runs, skips = 0, 0
  for i, p in ipairs(plan) do
    local w = index[i] or { depth = 1, index = tostring(i) }
    local st = plan_state(p)
    local mark = st == "run" and "run " or "skip"
    if st == "run" then runs = runs + 1 else skips = skips + 1 end
    local step = p.step or w.step
    local line = string.format("%s%s %s %s [%s]", string.rep("  ", w.depth), mark, w.index, step.Name or "", short_type(step))
    if st ~= "run" then line = line .. ": " .. (p.reason or st) end
    io.write(line, "\n")
  end
  io.write(string.format("%d run, %d skipped\n", runs, skips))
  return 0
end

-- ------------------------------------------------------------------ simulate

local FIELDS = { "ActionName", "ActionOutput", "AdvertisementID", "ExecutionTime", "ExitCode",
  "GroupName", "LastStatusMsgID", "LastStatusMsgName", "PackageID", "ResourceID", "Step" }
cli.FIELDS = FIELDS

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    local m = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\b'] = '\\b', ['\f'] = '\\f' }
    return m[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

function cli.json(v)
  local t = type(v)
  if t == "nil" then return "null"
  elseif t == "boolean" then return tostring(v)
  elseif t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.17g", v)
  elseif t == "string" then return json_string(v)
  elseif t == "table" then
    if #v > 0 or next(v) == nil and getmetatable(v) == cli.ARRAY then
      local parts = {}
      for i = 1, #v do parts[i] = cli.json(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = json_string(k) .. ":" .. cli.json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return json_string(tostring(v))
end
cli.ARRAY = {}

local function json_record(r)
  local parts = {}
  for _, f in ipairs(FIELDS) do parts[#parts + 1] = json_string(f) .. ":" .. cli.json(r[f]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function csv_field(v)
  v = v == nil and "" or tostring(v)
  if v:find('[,"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local function parse_exit(v)
  local name, code = v:match("^(.*)=(%-?%d+)$")
  if not name then fail("--exit wants \"STEP NAME=CODE\", got " .. v) end
  return name, math.tointeger(tonumber(code))
end

local function cmd_simulate(args)
  local opts, pos = parse_opts("simulate", args, { ["--var"] = "list", ["--machine"] = "value",
    ["--exit"] = "list", ["--format"] = "value" })
  if #pos ~= 1 then fail("simulate: one FILE expected") end
  local format = opts.format or "table"
  if format ~= "table" and format ~= "csv" and format ~= "json" then
    fail("simulate: --format is table, csv or json, not " .. format)
  end
  local codes = {}
  for _, v in ipairs(opts.exit or {}) do
    local n, c = parse_exit(v)
    codes[n] = c
  end
  local seq = load_seq(pos[1])
  local env = make_env(opts)
  local result = seq:run {
    env = env,
    handlers = { default = function(step) return codes[step.Name] or 0, "" end },
  }
  local recs = result.records or {}
  if format == "json" then
    for _, r in ipairs(recs) do io.write(json_record(r), "\n") end
  elseif format == "csv" then
    io.write(table.concat(FIELDS, ","), "\r\n")
    for _, r in ipairs(recs) do
      local row = {}
      for i, f in ipairs(FIELDS) do row[i] = csv_field(r[f]) end
      io.write(table.concat(row, ","), "\r\n")
    end
  else
    local cols = { "Step", "GroupName", "ActionName", "ExitCode", "LastStatusMsgName" }
    local rows, width = {}, {}
    for i, c in ipairs(cols) do width[i] = #c end
    for _, r in ipairs(recs) do
      local row = {}
      for i, c in ipairs(cols) do
        row[i] = r[c] == nil and "" or tostring(r[c])
        if #row[i] > width[i] then width[i] = #row[i] end
      end
      rows[#rows + 1] = row
    end
    local function line(row)
      local parts = {}
      for i, v in ipairs(row) do parts[i] = i == #row and v or v .. string.rep(" ", width[i] - #v) end
      return table.concat(parts, "  ")
    end
    io.write(line(cols), "\n")
    for _, row in ipairs(rows) do io.write(line(row), "\n") end
    io.write(result.succeeded and "succeeded" or "failed", "\n")
  end
  return result.succeeded and 0 or 1
end

-- ------------------------------------------------------------------ validate

function cli.step_path(step)
  local names = {}
  local s = step
  while s and s.parent do
    table.insert(names, 1, s.Name or "")
    s = s.parent
  end
  return table.concat(names, "/")
end

local function cmd_validate(args)
  local _, pos = parse_opts("validate", args, {})
  if #pos == 0 then fail("validate: at least one FILE expected") end
  local errors = 0
  for _, path in ipairs(pos) do
    local seq, err = ts.load(path)
    if not seq then
      io.write(err, "\n")
      errors = errors + 1
    else
      for _, p in ipairs(seq:validate()) do
        local where = p.step and cli.step_path(p.step) or ""
        if where == "" then where = "(sequence)" end
        if p.property then where = where .. ": " .. p.property end
        local sev = p.severity == "warning" and "warning: " or ""
        io.write(string.format("%s: %s: %s%s\n", path, where, sev, p.message))
        if p.severity ~= "warning" then errors = errors + 1 end
      end
    end
  end
  return errors > 0 and 1 or 0
end

-- ------------------------------------------------------------------ to-lua, build, fmt

local function cmd_to_lua(args)
  local _, pos = parse_opts("to-lua", args, {})
  if #pos ~= 1 then fail("to-lua: one FILE expected") end
  local text, err = read_file(pos[1])
  if not text then fail(err) end
  local script, serr = require("tasksequence.to_lua").from_xml(text, pos[1])
  if not script then fail(serr) end
  io.write(script)
  return 0
end

-- Runs a script that returns a sequence; args go to its `arg` table.
function cli.run_build_script(path, args)
  local chunk, err = loadfile(path)
  if not chunk then fail(err) end
  local saved = arg
  arg = { [0] = path, table.unpack(args or {}) }
  local ok, seq = pcall(chunk, table.unpack(args or {}))
  arg = saved
  if not ok then fail(path .. ": " .. tostring(seq)) end
  if type(seq) ~= "userdata" and type(seq) ~= "table" or not seq.to_xml then
    fail(path .. ": the script must return a sequence (got " .. type(seq) .. ")")
  end
  return seq
end

local function cmd_build(args)
  local opts, pos = parse_opts("build", args, { ["-o"] = "value", ["--output"] = "value" })
  if #pos < 1 then fail("build: SCRIPT.lua expected") end
  local script = table.remove(pos, 1)
  local seq = cli.run_build_script(script, pos)
  local out = opts.o or opts.output
  if out then
    local ok, err = seq:save(out)
    if not ok then fail(err) end
  else
    io.write(seq:to_xml())
  end
  return 0
end

local function canonical_xml(seq)
  local ok, text = pcall(seq.to_xml, seq, { canonical = true })
  if ok and text then return text end
  fail("fmt: this build can not write the canonical layout (seq:to_xml{canonical=true}): " .. tostring(text))
end

local function cmd_fmt(args)
  local opts, pos = parse_opts("fmt", args, { ["--check"] = "flag" })
  if #pos == 0 then fail("fmt: at least one FILE expected") end
  local status = 0
  for _, path in ipairs(pos) do
    local old, rerr = read_file(path)
    local seq, err
    if old then seq, err = ts.parse(old, path) else err = rerr end
    if not seq then
      io.write(err, "\n")
      status = 1
    else
      local text = canonical_xml(seq)
      if text ~= old then
        if opts.check then
          io.write(path, ": not formatted\n")
          status = 1
        else
          local new, perr = ts.parse(text, path)
          local ok, serr = false, perr
          if new then ok, serr = new:save(path) end
          if not ok then io.write(tostring(serr), "\n"); status = 1 end
        end
      end
    end
  end
  return status
end

-- ------------------------------------------------------------------ diff

local function cmd_diff(args)
  local opts, pos = parse_opts("diff", args, { ["--format"] = "value" })
  if #pos ~= 2 then fail("diff: two files expected (tsq diff A B)") end
  local a, b = load_seq(pos[1]), load_seq(pos[2])
  local changes = diff.compare(a, b)
  if opts.format == "json" then
    for _, c in ipairs(changes) do io.write(cli.json(c), "\n") end
  elseif opts.format and opts.format ~= "text" then
    fail("diff: --format is text or json, not " .. opts.format)
  else
    io.write(diff.format(changes))
  end
  return #changes == 0 and 0 or 1
end

-- ------------------------------------------------------------------ apply

local APPLY_OPTS = { ["--jobs"] = "value", ["-j"] = "value", ["--dry-run"] = "flag", ["--diff"] = "flag",
  ["--backup"] = "value", ["--continue-on-error"] = "flag" }

local function list_xml(dir, out)
  local p = io.popen("find " .. string.format("%q", dir):gsub("%$", "\\$"):gsub("`", "\\`") .. " -type f -name '*.xml' -print0 2>/dev/null")
  local all = p:read("a")
  p:close()
  local found = {}
  for f in all:gmatch("([^%z]+)") do found[#found + 1] = f end
  table.sort(found)
  for _, f in ipairs(found) do out[#out + 1] = f end
end

local function is_dir(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local ok, _, code = f:read(1)
  f:close()
  return ok == nil and code == 21 -- EISDIR
end

function cli.apply_prepare(args)
  local opts, pos = parse_opts("apply", args, APPLY_OPTS)
  if #pos < 2 then fail("apply: SCRIPT and at least one FILE_OR_DIR expected") end
  local script = table.remove(pos, 1)
  local files = {}
  for _, p in ipairs(pos) do
    if is_dir(p) then list_xml(p, files) else files[#files + 1] = p end
  end
  local chunk, err = loadfile(script)
  if not chunk then fail(err) end
  return { script = script, files = files, opts = opts, keep_going = opts.continue_on_error or false }
end

-- Loads the apply script once: it returns function(seq, path).
local function load_apply_script(script)
  local chunk, err = loadfile(script)
  if not chunk then fail(err) end
  local ok, fn = pcall(chunk)
  if not ok then fail(script .. ": " .. tostring(fn)) end
  if type(fn) ~= "function" then fail(script .. ": the script must return function(seq, path)") end
  return fn
end

-- One document: returns { status = "changed"|"unchanged"|"failed", path, message, diff }.
-- status "changed" under --dry-run means "would change"; nothing is written then.
function cli.apply_one(fn, path, opts)
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
  local mode = file_mode(path)
  if mode and mode & 146 == 0 then -- 0222: nobody may write it
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

local OUTCOME = { changed = 1, unchanged = 0, failed = -1 }

local function result_line(res, opts)
  if res.status == "failed" then
    local m = res.message or "failed"
    if m:sub(1, #res.path) == res.path then m = m:sub(#res.path + 1):gsub("^:%s*", "") end
    return "failed " .. res.path .. ": " .. m
  end
  local word = res.status
  if res.status == "changed" and opts.dry_run then word = "would change" end
  local line = word .. " " .. res.path
  if res.diff and res.diff ~= "" then line = line .. "\n" .. res.diff:gsub("\n$", "") end
  return line
end

-- For worker threads: function(path) -> status line, outcome (1, 0, -1).
function cli.apply_worker(args)
  local prep = cli.apply_prepare(args)
  local fn = load_apply_script(prep.script)
  return function(path)
    local res = cli.apply_one(fn, path, prep.opts)
    return result_line(res, prep.opts), OUTCOME[res.status]
  end
end

local function summary(n, changed, unchanged, failed, opts)
  return string.format("%d read, %d %s, %d unchanged, %d failed\n", n, changed,
    opts.dry_run and "would change" or "changed", unchanged, failed)
end

-- Prints the lines in file order and the summary; returns the exit status.
function cli.apply_finish(prep, lines, outcomes)
  local n, changed, unchanged, failed = 0, 0, 0, 0
  for i = 1, #prep.files do
    local o = outcomes[i]
    if o ~= nil then
      n = n + 1
      if o > 0 then changed = changed + 1 elseif o == 0 then unchanged = unchanged + 1 else failed = failed + 1 end
      local line = lines[i]
      if line and line ~= "" then
        if o < 0 then io.stderr:write(line, "\n") else io.write(line, "\n") end
      end
    end
  end
  io.write(summary(n, changed, unchanged, failed, prep.opts))
  return failed > 0 and 1 or 0
end

local function cmd_apply(args)
  local prep = cli.apply_prepare(args)
  local fn = load_apply_script(prep.script)
  local tty = isatty(2) and not prep.opts.diff
  local lines, outcomes = {}, {}
  local total = #prep.files
  for i, path in ipairs(prep.files) do
    local res = cli.apply_one(fn, path, prep.opts)
    lines[i], outcomes[i] = result_line(res, prep.opts), OUTCOME[res.status]
    if tty then
      local w = 30
      local done = math.floor(w * i / math.max(total, 1))
      io.stderr:write(string.format("\r[%s%s] %d/%d", string.rep("#", done), string.rep(" ", w - done), i, total))
      if i == total or (res.status == "failed" and not prep.keep_going) then io.stderr:write("\n") end
    end
    if res.status == "failed" and not prep.keep_going then break end
  end
  return cli.apply_finish(prep, lines, outcomes)
end

-- ------------------------------------------------------------------ help, main

local HELP = {
  run = "tsq run SCRIPT [ARGS...]\n  Runs a Lua script with the tasksequence module; arg is set as lua sets it.\n",
  show = "tsq show FILE\n  Prints the step tree: index path, name, class, flags, and each condition in text form.\n",
  eval = "tsq eval FILE [--var NAME=VALUE]... [--machine machine.lua]\n  Prints which steps would run and the reason each other step would be skipped.\n  machine.lua returns a table for ts.environment; --var sets task sequence variables.\n",
  simulate = "tsq simulate FILE [--var NAME=VALUE]... [--exit \"STEP NAME=CODE\"]... [--machine m.lua]\n             [--format table|csv|json]\n  Runs the sequence; every action exits 0 unless --exit says otherwise. Prints\n  SMS_TaskSequenceExecutionStatus records. Exit status 1 when the run failed.\n",
  validate = "tsq validate FILE...\n  Prints 'file: step path: message' for each problem; exit status 1 on errors.\n",
  ["to-lua"] = "tsq to-lua FILE\n  Prints a Lua script that rebuilds the document (tsq build SCRIPT gives it back).\n",
  build = "tsq build SCRIPT.lua [-o OUT.xml] [ARGS...]\n  Runs a script that returns a sequence; saves it to OUT or prints its XML.\n",
  fmt = "tsq fmt [--check] FILE...\n  Rewrites each file in one canonical layout (two-space indentation, LF).\n  --check only lists the files that are not formatted (exit status 1).\n",
  diff = "tsq diff A B [--format text|json]\n  Steps added, removed, moved, renamed, properties and conditions changed, by step path.\n  Exit status 0 when the same, 1 when different.\n",
  apply = "tsq apply SCRIPT FILE_OR_DIR... [--jobs N] [--dry-run] [--diff] [--backup SUFFIX]\n          [--continue-on-error]\n  SCRIPT returns function(seq, path); returning false leaves the file alone, otherwise\n  a changed document is saved atomically. Directories are walked for *.xml files in\n  sorted order. Prints one line per file and 'N read, N changed, N unchanged, N failed';\n  stops at the first failure unless --continue-on-error. Exit status 1 when a file failed.\n",
}
cli.HELP = HELP

local COMMANDS = { show = cmd_show, eval = cmd_eval, simulate = cmd_simulate, validate = cmd_validate,
  ["to-lua"] = cmd_to_lua, build = cmd_build, fmt = cmd_fmt, diff = cmd_diff, apply = cmd_apply }

local function cmd_help(args)
  local topic = args[1]
  if topic and HELP[topic] then
    io.write("usage: ", HELP[topic])
    return 0
  end
  if topic then fail("help: no such command: " .. topic) end
  local names = {}
  for k in pairs(HELP) do names[#names + 1] = k end
  table.sort(names)
  io.write("usage: tsq COMMAND [ARGS...]\n\ncommands:\n")
  for _, k in ipairs(names) do io.write("  ", HELP[k]:match("^[^\n]*"), "\n") end
  return 0
end
COMMANDS.help = cmd_help

function cli.main(cmd, args)
  local fn = COMMANDS[cmd]
  if not fn then
    eprintf("tsq: unknown command '%s' (tsq help lists them)\n", tostring(cmd))
    return 2
  end
  local ok, res = xpcall(fn, function(e)
    if type(e) == "table" and e.msg then return e end
    return debug.traceback(tostring(e), 2)
  end, args or {})
  if ok then return res or 0 end
  if type(res) == "table" and res.msg then
    eprintf("tsq %s: %s\n", cmd, res.msg)
    return 2
  end
  error(res, 0)
end

return cli
