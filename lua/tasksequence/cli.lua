-- tasksequence.cli: the subcommands of the `tsq` host.
-- cli.main(cmd, args) -> exit status. Expected failures (a missing file, a bad
-- option) print "tsq CMD: message" on stderr and return 2; errors in documents are
-- reported per file.
local ts = require "tasksequence"
local diff = require "tasksequence.diff"

local cli = {}

local function eprintf(fmt, ...) io.stderr:write(string.format(fmt, ...)) end

-- An expected failure: raised as a table so main can print it without a traceback.
local function fail(msg) error(setmetatable({ msg = msg }, { __tostring = function(e) return e.msg end }), 0) end

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
local function parse_opts(args, spec)
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
          if v == nil then fail(name .. " wants a value") end
        end
        if kind == "list" then
          opts[key] = opts[key] or {}
          table.insert(opts[key], v)
        else
          opts[key] = v
        end
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      fail("unknown option " .. a)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

cli.fail, cli.parse_opts, cli.read_file = fail, parse_opts, read_file

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
  local _, pos = parse_opts(args, {})
  if #pos ~= 1 then fail("one FILE expected") end
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

-- Why a condition is false, from its trace (operands after their children, evaluation
-- stopping at the first false operand of an "and"): the top-level operand that failed,
-- followed down through nested "and" operators to the operand that decided it.
local function false_reason(step, env)
  local c = step.Condition
  local r, trace = c:evaluate(env)
  if r ~= false or type(trace) ~= "table" then return "condition is false" end
  local k
  for i = #trace, 1, -1 do
    if trace[i].depth == 1 and not trace[i].result then k = i break end
  end
  if not k then return "condition is false" end
  while trace[k].why == "an operand is false" do
    local d, j = trace[k].depth, k - 1
    while j >= 1 and trace[j].depth > d and not (trace[j].depth == d + 1 and not trace[j].result) do j = j - 1 end
    if j < 1 or trace[j].depth ~= d + 1 then break end
    k = j
  end
  return string.format("condition is false: %s (%s)", trace[k].operand, trace[k].why)
end

-- The plan's states as eval's marks: "run ", "skip" (condition false, disabled, in a skipped
-- group) and "err " (the environment does not describe a fact the condition needs, or the
-- condition is malformed: the engine would fail the step).
local MARK = { run = "run ", skip_condition = "skip", disabled = "skip", skip_parent = "skip", error = "err " }

local function cmd_eval(args)
  local opts, pos = parse_opts(args, { ["--var"] = "list", ["--machine"] = "value" })
  if #pos ~= 1 then fail("one FILE expected") end
  local seq = load_seq(pos[1])
  local env = make_env(opts)
  local plan, err = seq:plan(env)
  if not plan then fail(pos[1] .. ": " .. tostring(err)) end
  local walk = cli.walk(seq)
  local runs, skips, errors = 0, 0, 0
  local out = {}
  for i, p in ipairs(plan) do
    local w = walk[i]
    local st = p.state
    local mark = MARK[st] or error("tsq eval: unknown plan state " .. tostring(st))
    local reason
    if st == "run" then
      runs = runs + 1
    elseif st == "error" then
      errors = errors + 1
      reason = "condition can not be evaluated: " .. tostring(p.reason)
    else
      skips = skips + 1
      reason = st == "skip_condition" and false_reason(p.step, env) or p.reason
    end
    local step = p.step
    out[#out + 1] = string.format("%s%s %s %s [%s]%s", string.rep("  ", w.depth), mark, w.index,
      step.Name or "", short_type(step), reason and (": " .. reason) or "")
  end
  out[#out + 1] = string.format("%d run, %d skipped%s", runs, skips,
    errors > 0 and string.format(", %d undecided", errors) or "")
  io.write(table.concat(out, "\n"), "\n")
  return errors > 0 and 1 or 0
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

-- CODE is an exit code, or "timeout" / "restart" (the step runs into its Timeout, the
-- computer restarts unexpectedly during it: the handler options of seq:run).
local function parse_exit(v)
  local name, code = v:match("^(.*)=(%-?%d+)$")
  if name then return name, math.tointeger(tonumber(code)) end
  name, code = v:match("^(.*)=(%a+)$")
  if not name or (code ~= "timeout" and code ~= "restart") then
    fail("--exit wants \"STEP NAME=CODE\" (CODE an integer, timeout or restart), got " .. v)
  end
  return name, code
end

local function cmd_simulate(args)
  local opts, pos = parse_opts(args, { ["--var"] = "list", ["--machine"] = "value",
    ["--exit"] = "list", ["--format"] = "value" })
  if #pos ~= 1 then fail("one FILE expected") end
  local format = opts.format or "table"
  if format ~= "table" and format ~= "csv" and format ~= "json" then
    fail("--format is table, csv or json, not " .. format)
  end
  local seq = load_seq(pos[1])
  -- --exit names a step by name (every step of that name), path ("Install/Apply OS") or
  -- index ("2.1"), as tsq show prints them; a name that matches no step is a mistake.
  local codes, walk = {}, cli.walk(seq)
  for _, v in ipairs(opts.exit or {}) do
    local n, c = parse_exit(v)
    local hit = false
    for _, w in ipairs(walk) do
      if w.step.kind == "action" and (w.step.Name == n or w.path == n or w.index == n) then
        codes[w.step] = c
        hit = true
      end
    end
    if not hit then fail("--exit names no action of " .. pos[1] .. ": " .. n) end
  end
  local env = make_env(opts)
  local result = seq:run {
    env = env,
    handlers = { default = function(step)
      local c = codes[step] or 0
      if type(c) == "string" then return 0, "", { [c] = true } end
      return c, ""
    end },
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
  local _, pos = parse_opts(args, {})
  if #pos == 0 then fail("at least one FILE expected") end
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
  local _, pos = parse_opts(args, {})
  if #pos ~= 1 then fail("one FILE expected") end
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
  if not ok then
    local msg = tostring(seq)
    -- errors raised by the script's own lines already start with its name
    fail(msg:sub(1, #path + 1) == path .. ":" and msg or path .. ": " .. msg)
  end
  if type(seq) ~= "userdata" and type(seq) ~= "table" or not seq.to_xml then
    fail(path .. ": the script must return a sequence (got " .. type(seq) .. ")")
  end
  return seq
end

local function cmd_build(args)
  local opts, pos = parse_opts(args, { ["-o"] = "value", ["--output"] = "value" })
  if #pos < 1 then fail("SCRIPT.lua expected") end
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
  fail("this build can not write the canonical layout (seq:to_xml{canonical=true}): " .. tostring(text))
end

local function cmd_fmt(args)
  local opts, pos = parse_opts(args, { ["--check"] = "flag" })
  if #pos == 0 then fail("at least one FILE expected") end
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
  local opts, pos = parse_opts(args, { ["--format"] = "value" })
  if #pos ~= 2 then fail("two files expected (tsq diff A B)") end
  local a, b = load_seq(pos[1]), load_seq(pos[2])
  local changes = diff.compare(a, b)
  if opts.format == "json" then
    for _, c in ipairs(changes) do io.write(cli.json(c), "\n") end
  elseif opts.format and opts.format ~= "text" then
    fail("--format is text or json, not " .. opts.format)
  else
    io.write(diff.format(changes))
  end
  return #changes == 0 and 0 or 1
end

-- ------------------------------------------------------------------ apply

-- tasksequence.apply holds the command; the host's worker threads require it directly.
local function cmd_apply(args) return require("tasksequence.apply").main(args) end

-- ------------------------------------------------------------------ help, main

local HELP = {
  run = "tsq run SCRIPT [ARGS...]\n  Runs a Lua script with the tasksequence module; arg is set as lua sets it.\n",
  show = "tsq show FILE\n  Prints the step tree: index path, name, class, flags, and each condition in text form.\n",
  eval = "tsq eval FILE [--var NAME=VALUE]... [--machine machine.lua]\n  Prints the step tree marking each step run, skip (with the reason) or err (a fact the\n  machine does not describe; the run would fail the step). machine.lua returns a table\n  for ts.environment; --var sets task sequence variables. Exit status 1 when a step is err.\n",
  simulate = "tsq simulate FILE [--var NAME=VALUE]... [--exit \"STEP NAME=CODE\"]... [--machine m.lua]\n             [--format table|csv|json]\n  Runs the sequence; every action exits 0 unless --exit gives its code (the step by\n  name, path or index as tsq show prints them; CODE timeout or restart simulates those). Prints\n  SMS_TaskSequenceExecutionStatus records. Exit status 1 when the run failed.\n",
  validate = "tsq validate FILE...\n  Prints 'file: step path: message' for each problem; exit status 1 on errors.\n",
  ["to-lua"] = "tsq to-lua FILE\n  Prints a Lua script that rebuilds the document (tsq build SCRIPT gives it back).\n",
  build = "tsq build SCRIPT.lua [-o OUT.xml] [ARGS...]\n  Runs a script that returns a sequence; saves it to OUT or prints its XML.\n",
  fmt = "tsq fmt [--check] FILE...\n  Rewrites each file in one canonical layout (two-space indentation, LF).\n  --check only lists the files that are not formatted (exit status 1).\n",
  diff = "tsq diff A B [--format text|json]\n  Steps added, removed, moved, renamed, properties and conditions changed, by step path.\n  Exit status 0 when the same, 1 when different.\n",
  apply = "tsq apply SCRIPT FILE_OR_DIR... [--jobs N] [--dry-run] [--diff] [--backup SUFFIX]\n          [--continue-on-error]\n  SCRIPT returns function(seq, path); returning false leaves the file alone, otherwise\n  a changed document is saved atomically. Directories are walked for *.xml files in\n  sorted order. Prints one line per file, in that order whatever --jobs is (failures on\n  stderr; a progress bar on a terminal), then 'N read, N changed, N unchanged, N failed'.\n  Stops at the first failure unless --continue-on-error: later files are not saved.\n  --jobs N: N worker threads, each with its own Lua state. --dry-run writes nothing;\n  --diff prints each document's changes. --backup SUFFIX keeps FILE.SUFFIX of changed\n  files. Exit status 1 when a file failed, 2 on a usage error.\n",
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
  if topic then fail("no such command: " .. topic) end
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
