-- The engine from Lua (seq:run): scenarios named after the rule they show, and every real
-- document run with a default handler and compared, step by step, with seq:plan.
local ts = require "tasksequence"
local H = require "helpers"

-- "ID@Step ID@Step ...": the shape of a run
local function sig(result)
  local out = {}
  for i, r in ipairs(result.records) do out[i] = r.LastStatusMsgID .. "@" .. r.Step end
  return table.concat(out, " ")
end

local function find(result, id, name)
  for _, r in ipairs(result.records) do
    if r.LastStatusMsgID == id and (not name or r.ActionName == name) then return r end
  end
end

local function cmd(name, props)
  props = props or {}
  props.CommandLine = props.CommandLine or "cmd /c " .. name
  return ts.RunCommandLine(name)(props)
end

-- handlers = { default = scripted }: the step's Description says what it does
-- ("exit=5", "fail=boom"), and every call is logged as "Name,".
local function scripted(log)
  return function(step, env)
    log[#log + 1] = step.Name
    local d = step.Description or ""
    local err = d:match("fail=(.*)")
    if err then error(err, 0) end
    return tonumber(d:match("exit=(%-?%d+)") or 0), d:match("out=([^;]*)")
  end
end

describe("engine scenarios", function()
  it("scenario: the planning guide's continue-on-error example", function()
    -- Group1 (CoE) { S1 (CoE), S2, S3 }, Group2 { S4, S5, S6 }: S1, S2 and S4 fail
    local seq = ts.sequence "guide" {
      ts.group "Group1" { ContinueOnError = true,
        cmd("S1", { ContinueOnError = true, Description = "exit=1" }),
        cmd("S2", { Description = "exit=2" }), cmd("S3") },
      ts.group "Group2" { cmd("S4", { Description = "exit=4" }), cmd("S5"), cmd("S6") },
    }
    local log = {}
    local r = seq:run { handlers = { default = scripted(log) } }
    assert.same({ "S1", "S2", "S4" }, log)
    assert.equals("11140@0 11124@1 11135@2 11138@2 11135@3 11122@1 11139@1 11124@5 11135@6 11122@5 11141@0 11170@0",
      sig(r))
    assert.is_false(r.succeeded)
    assert.equals(4, r.records[#r.records].ExitCode)
    assert.equals("false", r.variables._SMSTSLastActionSucceeded)
  end)

  it("scenario: steps run in document order, depth first", function()
    local seq = ts.sequence "order" { cmd("a"), ts.group "g" { cmd("b"), ts.group "h" { cmd("c") }, cmd("d") }, cmd("e") }
    local log = {}
    local r = seq:run { handlers = { default = scripted(log) } }
    assert.same({ "a", "b", "c", "d", "e" }, log)
    assert.equals("11140@0 11134@1 11124@2 11134@3 11124@4 11134@5 11127@4 11134@6 11127@2 11134@7 11143@0 11171@0",
      sig(r))
  end)

  it("scenario: a disabled step and a disabled group are skipped, the last-action variables stay", function()
    local seq = ts.sequence "off" {
      cmd("a", { Description = "exit=3010" }),
      cmd("b", { Enabled = false, Description = "fail=never" }),
      ts.group "g" { Enabled = false, cmd("c", { Description = "fail=never" }) },
      cmd("reader"),
    }
    local seen
    local r = seq:run { handlers = { default = function(step, env)
      if step.Name == "reader" then seen = env.variables._SMSTSLastActionName .. "/" .. env.variables._SMSTSLastActionRetCode end
      return 3010
    end } }
    assert.equals("a/3010", seen)
    assert.equals("11140@0 11134@1 11142@1 11128@2 11129@3 11134@5 11142@5 11143@0 11171@0", sig(r))
  end)

  it("scenario: a condition is evaluated when the step is reached, against the live environment", function()
    local seq = ts.sequence "live" {
      cmd("before", { Condition = ts.condition 'Stage equals "two"' }),
      ts.SetVariable "set stage" { VariableName = "Stage", VariableValue = "two" },
      cmd("after", { Condition = ts.condition 'Stage equals "two"' }),
      cmd("detect", { Description = "exit=0" }),
      cmd("laptop only", { Condition = ts.condition 'IsLaptop equals "true"' }),
    }
    local log = {}
    local r = seq:run { handlers = {
      default = scripted(log),
      RunCommandLine = function(step, env)
        log[#log + 1] = step.Name
        if step.Name == "detect" then env.variables.IsLaptop = "true" end
        return 0
      end } }
    assert.same({ "after", "detect", "laptop only" }, log)
    assert.equals("11140@0 11130@1 11134@2 11134@3 11134@4 11134@5 11143@0 11171@0", sig(r))
  end)

  it("scenario: a group's condition is evaluated once, before its children", function()
    local seq = ts.sequence "once" {
      ts.group "g" { Condition = ts.condition 'Go equals "yes"',
        cmd("flip", { Description = "flip" }), cmd("still runs") },
    }
    local log = {}
    local r = seq:run { env = ts.environment { variables = { Go = "yes" } }, handlers = { default = function(step, env)
      log[#log + 1] = step.Name
      env.variables.Go = "no"
      return 0
    end } }
    assert.same({ "flip", "still runs" }, log)
    assert.equals("11140@0 11124@1 11134@2 11134@3 11127@1 11143@0 11171@0", sig(r))
  end)

  it("scenario: a failure fails every enclosing group up to the root", function()
    local seq = ts.sequence "up" {
      ts.group "outer" { ts.group "inner" { cmd("x", { Description = "exit=3" }), cmd("y") }, cmd("z") }, cmd("w") }
    local log = {}
    local r = seq:run { handlers = { default = scripted(log) } }
    assert.same({ "x" }, log)
    assert.equals("11140@0 11124@1 11124@2 11135@3 11122@2 11122@1 11141@0 11170@0", sig(r))
    assert.equals(3, find(r, 11122).ExitCode)
  end)

  it("scenario: success codes decide success", function()
    local seq = ts.sequence "codes" {
      cmd("listed", { Description = "exit=5", SuccessCodes = "0 5" }),
      cmd("not listed", { Description = "exit=6", SuccessCodes = "0 5" }),
    }
    local r = seq:run { handlers = { default = scripted({}) } }
    assert.equals("11140@0 11134@1 11135@2 11141@0 11170@0", sig(r))
  end)

  it("scenario: exit code 3010 of Run Command Line is a success followed by a reboot", function()
    local seq = ts.sequence "3010" { cmd("install", { Description = "exit=3010" }), cmd("next") }
    local r = seq:run { handlers = { default = scripted({}) } }
    assert.equals("11140@0 11134@1 11142@1 11134@2 11143@0 11171@0", sig(r))
    assert.equals(3010, find(r, 11142).ExitCode)
    assert.equals("install", find(r, 11142).ActionName)
  end)

  it("scenario: a Lua handler requests a reboot through SMSTSRebootRequested", function()
    local seq = ts.sequence "reboot" { cmd("ask"), cmd("next") }
    local seen
    local r = seq:run { env = ts.environment { variables = { _SMSTSInWinPE = "true" } }, handlers = {
      default = function(step, env)
        if step.Name == "ask" then env.variables.SMSTSRebootRequested = "HD" end
        if step.Name == "next" then seen = tostring(env.variables.SMSTSRebootRequested) .. "/" .. env.variables._SMSTSInWinPE end
        return 0
      end } }
    assert.equals("11140@0 11134@1 11142@1 11134@2 11143@0 11171@0", sig(r))
    assert.equals("nil/false", seen) -- cleared after the reboot; a reboot to HD leaves Windows PE
  end)

  it("scenario: SMSTSRetryRequested runs the same step again after the reboot", function()
    local seq = ts.sequence "retry" { cmd("twice"), cmd("next") }
    local n = 0
    local r = seq:run { handlers = { default = function(step, env)
      if step.Name == "twice" then
        n = n + 1
        if n == 1 then
          env.variables.SMSTSRebootRequested = "WinPE"
          env.variables.SMSTSRetryRequested = "true"
        end
      end
      return 0
    end } }
    assert.equals(2, n)
    assert.equals("11140@0 11134@1 11142@1 11134@1 11134@2 11143@0 11171@0", sig(r))
    assert.is_nil(r.variables.SMSTSRetryRequested)
  end)

  it("scenario: a handler that raises fails its step with the message as output; ContinueOnError masks it", function()
    local seq = ts.sequence "raise" { cmd("boom", { ContinueOnError = true, Description = "fail=disk not found" }), cmd("next") }
    local r = seq:run { handlers = { default = scripted({}) } }
    assert.equals("11140@0 11135@1 11138@1 11134@2 11143@0 11171@0", sig(r))
    assert.equals("disk not found", find(r, 11135).ActionOutput)
    assert.equals(0x80004005, find(r, 11135).ExitCode)
    assert.is_true(r.succeeded)
  end)

  it("scenario: a handler returning something that is not an exit code fails its step", function()
    local seq = ts.sequence "bad" { cmd("odd") }
    local r = seq:run { handlers = { default = function() return "zero" end } }
    assert.is_false(r.succeeded)
    assert.matches("handler must return an exit code %(got string%)", find(r, 11135).ActionOutput)
  end)

  it("scenario: handlers by short or full class name win over default", function()
    local seq = ts.sequence "names" {
      cmd("c"), ts.RunPowerShellScript "p" { SourceScript = "x" }, ts.PartitionDisk "d" {} }
    local log = {}
    local function tag(t) return function(step) log[#log + 1] = t .. ":" .. step.Name; return 0 end end
    seq:run { handlers = { RunCommandLine = tag("short"), SMS_TaskSequence_RunPowerShellScriptAction = tag("full"),
                           default = tag("default") } }
    assert.same({ "short:c", "full:p", "default:d" }, log)
  end)

  it("scenario: the engine variables while a step runs and after it", function()
    local seq = ts.sequence "vars" { cmd("first", { Description = "exit=7", ContinueOnError = true }), cmd("second") }
    local seen = {}
    local r = seq:run { PackageID = "PS100123", AdvertisementID = "PS120001", handlers = { default = function(step, env)
      local v = env.variables
      seen[#seen + 1] = table.concat({ v._SMSTSCurrentActionName, tostring(v._SMSTSLastActionName),
        tostring(v._SMSTSLastActionRetCode), tostring(v._SMSTSLastActionSucceeded), v._SMSTSPackageID, v._SMSTSAdvertID }, "/")
      return tonumber(step.Description:match("exit=(%d+)") or 0)
    end } }
    assert.same({ "first/nil/nil/nil/PS100123/PS120001", "second/first/7/false/PS100123/PS120001" }, seen)
    assert.equals("second", r.variables._SMSTSLastActionName)
    assert.equals("0", r.variables._SMSTSLastActionRetCode)
    assert.equals("true", r.variables._SMSTSLastActionSucceeded)
  end)

  it("scenario: action properties are variables while their step runs, and only then", function()
    local seq = ts.sequence "props" { cmd("as user", { UserName = "CONTOSO\\deploy" }), cmd("later") }
    local seen = {}
    seq:run { handlers = { default = function(step, env)
      seen[step.Name] = tostring(env.variables.SMSTSRunCommandLineUserName)
      return 0
    end } }
    assert.same({ ["as user"] = "CONTOSO\\deploy", later = "nil" }, seen)
  end)

  it("scenario: Set Task Sequence Variable is applied by the engine, expanding %VAR%", function()
    local seq = ts.sequence "set" {
      ts.SetVariable "server" { VariableName = "Server", VariableValue = "srv01" },
      ts.SetVariable "share" { VariableName = "Share", VariableValue = "\\\\%Server%\\deploy" },
      ts.SetVariable "read-only" { VariableName = "_SMSTSInWinPE", VariableValue = "true", ContinueOnError = true },
    }
    local r = seq:run { handlers = { default = function() error("no handler is needed", 0) end } }
    assert.equals("\\\\srv01\\deploy", r.variables.Share)
    assert.equals("11140@0 11134@1 11134@2 11135@3 11138@3 11143@0 11171@0", sig(r))
    assert.matches("read%-only", find(r, 11135).ActionOutput)
  end)

  it("scenario: SupportedEnvironment is checked against _SMSTSInWinPE", function()
    local seq = ts.sequence "where" {
      cmd("pe only", { SupportedEnvironment = "WinPE", ContinueOnError = true }),
      cmd("os only", { SupportedEnvironment = "FullOS" }) }
    local r = seq:run { env = ts.environment { variables = { _SMSTSInWinPE = "false" } } }
    assert.equals("11140@0 11135@1 11138@1 11134@2 11143@0 11171@0", sig(r))
    assert.equals(0x80070032, find(r, 11135).ExitCode)
    r = seq:run { env = ts.environment { variables = { _SMSTSInWinPE = "true" } } }
    assert.equals("11140@0 11134@1 11135@2 11141@0 11170@0", sig(r))
    r = seq:run {}
    assert.equals("11140@0 11134@1 11134@2 11143@0 11171@0", sig(r)) -- where it runs is unknown: no check
  end)

  it("scenario: Run Task Sequence loads the child through the loader and runs it inline", function()
    local child = ts.sequence "child" { cmd("c1"), ts.group "cg" { cmd("c2") } }
    local seq = ts.sequence "parent" {
      cmd("p1"), ts.SubTasksequence "run child" { TsPackageID = "PS100200" }, cmd("p2") }
    local asked, log = {}, {}
    local r = seq:run { handlers = { default = scripted(log) },
      loader = function(pkg) asked[#asked + 1] = pkg; return child end }
    assert.same({ "PS100200" }, asked)
    assert.same({ "p1", "c1", "c2", "p2" }, log)
    -- the child's steps are numbered after the parent's three
    assert.equals("11140@0 11134@1 11134@4 11124@5 11134@6 11127@5 11134@2 11134@3 11143@0 11171@0", sig(r))
    assert.equals("run child", r.records[3].GroupName)
    -- a table of sequences by package works too; a missing package fails the step
    r = seq:run { sequences = { PS100200 = child } }
    assert.is_true(r.succeeded)
    r = seq:run { sequences = {} }
    assert.is_false(r.succeeded)
    assert.matches("PS100200", find(r, 11135, "run child").ActionOutput)
  end)

  it("scenario: a condition on a fact the environment does not describe fails the step, naming it", function()
    local seq = ts.sequence "facts" {
      cmd("battery", { Condition = ts.condition 'wmi "SELECT * FROM Win32_Battery"', ContinueOnError = true }),
      cmd("next") }
    local r = seq:run { env = ts.environment {} }
    assert.equals("11140@0 11135@1 11138@1 11134@2 11143@0 11171@0", sig(r))
    assert.matches("SELECT %* FROM Win32_Battery is not described", find(r, 11135).ActionOutput)
    local plan = seq:plan(ts.environment {})
    assert.equals("error", plan[1].state)
    assert.matches("SELECT %* FROM Win32_Battery is not described", plan[1].reason)
  end)

  it("scenario: a WMI query error is false only with ignoreQueryFailure", function()
    local env = ts.environment { wmi = function() return -1 end }
    assert.is_false((ts.condition 'wmi "SELECT 1" [ignoreQueryFailure="true"]':evaluate(env)))
    local r, msg = ts.condition 'wmi "SELECT 1"':evaluate(env)
    assert.is_nil(r)
    assert.matches("failed %(ignoreQueryFailure is not set%)", msg)
  end)

  it("scenario: records have the eleven fields, times from the host's clock", function()
    local seq = ts.sequence "fields" { ts.group "g" { cmd("a", { Description = "out=hello" }) } }
    local t = 1709251199 -- 2024-02-29 23:59:59 UTC; the step takes 30 seconds
    local r = seq:run { AdvertisementID = "PS120001", PackageID = "PS100123", ResourceID = 16777220,
      clock = function() return t end,
      handlers = { default = function() t = t + 30; return 0, "hello" end } }
    assert.equals("20240229235959.000000+000", r.records[1].ExecutionTime)
    assert.same({ ActionName = "a", ActionOutput = "hello", AdvertisementID = "PS120001",
      ExecutionTime = "20240301000029.000000+000", ExecutionTimeUnix = 1709251229, ExitCode = 0, GroupName = "g",
      LastStatusMsgID = 11134, LastStatusMsgName = "The task sequence execution engine successfully completed an action",
      PackageID = "PS100123", ResourceID = 16777220, Step = 2 }, find(r, 11134))
  end)

  it("scenario: a step that outlasts its Timeout on the host's clock fails with ERROR_TIMEOUT", function()
    local seq = ts.sequence "slow" {
      cmd("slow", { Timeout = 60, Description = "120", ContinueOnError = true }),
      cmd("quick", { Timeout = 60, Description = "60" }) }
    local t = 1700000000
    local r = seq:run { clock = function() return t end, handlers = { default = function(step)
      t = t + tonumber(step.Description)
      return 0
    end } }
    assert.equals("11140@0 11135@1 11138@1 11134@2 11143@0 11171@0", sig(r))
    assert.equals(0x800705B4, find(r, 11135).ExitCode)
    assert.matches("timeout of 60 seconds", find(r, 11135).ActionOutput)
  end)

  it("scenario: a Lua handler reports a timeout with { timeout = true }", function()
    local seq = ts.sequence "timeout" { cmd("hangs", { Timeout = 600 }), cmd("never") }
    local r = seq:run { handlers = { default = function(step)
      if step.Name == "hangs" then return 0, "still copying", { timeout = true } end
      return 0
    end } }
    assert.equals("11140@0 11135@1 11141@0 11170@0", sig(r))
    local rec = find(r, 11135)
    assert.equals(0x800705B4, rec.ExitCode)
    assert.equals("still copying\nthe step did not finish within its timeout of 600 seconds", rec.ActionOutput)
    assert.equals(tostring(0x800705B4 - 0x100000000), r.variables._SMSTSLastActionRetCode)
  end)

  it("scenario: a Lua handler reports an unexpected restart with { restart = true }, retried retryCount times", function()
    local seq = ts.sequence "restart" {
      ts.InstallApplication "apps" { RetryCount = 2, ContinueOnError = true }, cmd("next") }
    local calls = 0
    local r = seq:run { handlers = { InstallApplication = function()
      calls = calls + 1
      if calls <= 2 then return 0, nil, { restart = true } end
      return 0
    end } }
    assert.equals(3, calls)
    assert.equals("11140@0 11142@1 11142@1 11134@1 11134@2 11143@0 11171@0", sig(r))
    -- restarting every time: after two retries the step fails
    r = seq:run { handlers = { InstallApplication = function() return 0, nil, { restart = true } end } }
    assert.equals("11140@0 11142@1 11142@1 11135@1 11138@1 11134@2 11143@0 11171@0", sig(r))
    assert.matches("restarted unexpectedly during the step %(2 retries%)", find(r, 11135).ActionOutput)
  end)

  it("scenario: handler options that make no sense fail the step with a message", function()
    local seq = ts.sequence "bad options" { cmd("a", { ContinueOnError = true }), cmd("b", { ContinueOnError = true }),
                                            cmd("c") }
    local r = seq:run { handlers = { default = function(step)
      if step.Name == "a" then return 0, nil, { reboot = true } end
      if step.Name == "b" then return 0, nil, "timeout" end
      return 0, nil, { timeout = true, restart = true }
    end } }
    local out = {}
    for _, rec in ipairs(r.records) do if rec.LastStatusMsgID == 11135 then out[#out + 1] = rec.ActionOutput end end
    assert.same({ "unknown handler option 'reboot' (valid: timeout, restart)",
                  "handler options must be a table (got string)",
                  "handler options timeout and restart exclude each other" }, out)
  end)

  it("scenario: the run works on a copy; the caller's environment is unchanged", function()
    local env = ts.environment { variables = { Keep = "1" } }
    local seq = ts.sequence "copy" { ts.SetVariable "s" { VariableName = "Keep", VariableValue = "2" } }
    local r = seq:run { env = env }
    assert.equals("1", env.variables.Keep)
    assert.equals("2", r.variables.Keep)
    assert.equals("2", r.env.variables.Keep)
    -- the returned environment can seed the next run: a resumed deployment
    local again = seq:run { env = r.env }
    assert.equals("s", again.variables._SMSTSLastActionName)
  end)

  it("scenario: too many reboots stop the run as failed", function()
    local seq = ts.sequence "loop" { ts.group "g" { ContinueOnError = true, cmd("forever", { ContinueOnError = true }) } }
    local r = seq:run { max_reboots = 2, handlers = { default = function(_, env)
      env.variables.SMSTSRebootRequested = "HD"
      env.variables.SMSTSRetryRequested = "true"
      return 0
    end } }
    assert.is_false(r.succeeded)
    assert.equals("11140@0 11124@1 11134@2 11142@2 11134@2 11142@2 11134@2 11122@1 11141@0 11170@0", sig(r))
    assert.matches("too many reboots", r.records[#r.records].ActionOutput)
  end)
end)

-- ------------------------------------------------------------------ the corpus: run against plan

-- Every condition fact is described (nothing on the disk, no WMI rows, no software).
local function machine(vars)
  return ts.environment { variables = vars, wmi = function() return 0 end, files = {}, folders = {},
                          registry = {}, software = {} }
end

local MACHINES = {
  { name = "bare", vars = {} },
  { name = "Windows PE, MDT new computer", vars = { _SMSTSInWinPE = "true", DeploymentType = "NEWCOMPUTER",
      PHASE = "PREINSTALL", OSDComputerName = "PC01", Architecture = "X64", OSCurrentVersion = "10.0.19045",
      IsUEFI = "True", _SMSTSMediaType = "BootMedia", _SMSTSLaunchMode = "PXE" } },
}

-- Records expected for a plan state, by kind: the record a step reached that way gets.
local EXPECT = {
  group = { run = { [11124] = true }, skip_condition = { [11131] = true }, disabled = { [11129] = true },
            error = { [11122] = true } },
  action = { run = { [11134] = true, [11135] = true }, skip_condition = { [11130] = true },
             disabled = { [11128] = true }, error = { [11135] = true } },
}
local FIRST = { [11124] = true, [11131] = true, [11129] = true, [11122] = true, [11134] = true, [11135] = true,
                [11130] = true, [11128] = true }

-- Lowercased names of the variables the run changed: values that differ at the end, and the
-- targets of Set Task Sequence Variable steps (a value set and set back differs in between).
local function changed_vars(seq, before, after)
  local names = {}
  local function add(n) names[n:lower()] = true end
  for k, v in pairs(after) do if before[k] ~= v then add(k) end end
  for k in pairs(before) do if after[k] == nil then add(k) end end
  for _, s in ipairs(seq:find { type = "SetVariable" }) do
    if s.VariableName then add(s.VariableName) end
  end
  return names
end

-- Does the condition text of step (or of an ancestor) name one of the changed variables?
local function mentions(step, names)
  local c = step.Condition
  if not c then return false end
  for word in tostring(c):gmatch("[%w_%-]+") do
    if names[word:lower()] then return true end
  end
  return false
end

-- Compares one run with the plan for the same environment; returns counts and a list of
-- unexplained differences.
local function compare(seq, env, result, plan)
  local steps = {}
  for s in seq:steps() do steps[#steps + 1] = s end
  local number = {}
  for i, s in ipairs(steps) do number[s] = i end
  local first, failed_groups, failures = {}, {}, {}
  for i, rec in ipairs(result.records) do
    local n, id = rec.Step, rec.LastStatusMsgID
    if n > 0 and n <= #steps and FIRST[id] and not first[n] then first[n] = id end
    if id == 11122 then failed_groups[n] = true end
    local nxt = result.records[i + 1]
    local masked = nxt and ((id == 11135 and nxt.LastStatusMsgID == 11138) or (id == 11122 and nxt.LastStatusMsgID == 11139))
    if (id == 11135 or id == 11122) and not masked then failures[#failures + 1] = n end
  end
  local before = {}
  for k, v in pairs(env.variables) do before[k] = v end
  local names = changed_vars(seq, before, result.variables)
  local exact, explained, bad = 0, {}, {}
  local differs = {} -- step number -> "entered" | "not entered" where a group did not follow the plan
  for i, s in ipairs(steps) do
    local p = plan[i]
    assert(p.step == s, "plan and steps() disagree at " .. i)
    local kind = s.kind
    local id = first[i]
    local ok
    if p.state == "skip_parent" then ok = id == nil
    else ok = id ~= nil and EXPECT[kind][p.state][id] == true end
    if p.state == "error" and ok and kind == "action" then
      ok = find(result, 11135, s.Name) ~= nil
    end
    if ok then
      exact = exact + 1
    else
      -- why may the run legitimately differ from the static plan here?
      local why
      if id == nil then
        -- a failure earlier in a scope that failed: the root, or a group holding this step
        local scope_failed = not result.succeeded
        local g = s.parent
        while not scope_failed and g and g.kind == "group" do
          scope_failed = failed_groups[number[g]] == true
          g = g.parent
        end
        for _, f in ipairs(failures) do
          if scope_failed and f < i then why = "not reached after a failure at step " .. f break end
        end
      end
      local parent = s.parent
      while not why and parent and parent.kind == "group" do
        local d = differs[number[parent]]
        -- a group the plan enters but the run does not takes its steps with it; a group the
        -- run enters against the plan leaves the plan nothing to say about its steps
        if d == "entered" or (d == "not entered" and id == nil) then why = "an enclosing group differs" end
        parent = parent.parent
      end
      if not why and mentions(s, names) then why = "its condition reads a variable the run changed" end
      if why then
        explained[why:gsub(" %d+$", "")] = (explained[why:gsub(" %d+$", "")] or 0) + 1
        differs[i] = id == 11124 and "entered" or "not entered"
      else
        bad[#bad + 1] = string.format("step %d %q (%s): plan %s, first record %s", i, s.Name, kind, p.state, tostring(id))
      end
    end
  end
  return exact, explained, bad, failed_groups
end

H.describe_corpus("every real document run with a default handler agrees with seq:plan", function()
  local files = H.corpus_files()

  for _, m in ipairs(MACHINES) do
    it("on the machine '" .. m.name .. "'", function()
      local docs, total_exact, total_explained, problems = 0, 0, {}, {}
      for _, path in ipairs(files) do
        local seq = assert(ts.load(path))
        docs = docs + 1
        local env = machine(m.vars)
        local plan = assert(seq:plan(env))
        local result = seq:run { env = env, handlers = { default = 0 },
          loader = function() return ts.sequence "empty child" {} end,
          AdvertisementID = "PS120001", PackageID = "PS100001", ResourceID = 1 }
        assert.equals(11140, result.records[1].LastStatusMsgID)
        local exact, explained, bad = compare(seq, env, result, plan)
        total_exact = total_exact + exact
        for k, v in pairs(explained) do total_explained[k] = (total_explained[k] or 0) + v end
        for _, b in ipairs(bad) do problems[#problems + 1] = path:match("[^/]+$") .. ": " .. b end
      end
      assert.same({}, problems)
      assert.is_true(docs >= 51, "documents: " .. docs)
      -- the comparison is not vacuous: most steps follow the plan exactly
      local diff = 0
      for _, v in pairs(total_explained) do diff = diff + v end
      assert.is_true(total_exact > 4 * diff, ("exact %d, explained %d"):format(total_exact, diff))
      io.stderr:write(("\n  %s: %d documents, %d steps as planned, explained differences: %s\n"):format(m.name, docs,
        total_exact, (function()
          local t = {}
          for k, v in pairs(total_explained) do t[#t + 1] = k .. " " .. v end
          table.sort(t)
          return table.concat(t, "; ")
        end)()))
    end)
  end
end)
