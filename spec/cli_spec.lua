-- The tsq host and its subcommands, run as a program (TSQ_BIN, default build/bin/tsq).
local BIN = os.getenv("TSQ_BIN") or "build/bin/tsq"

local H = require "helpers"
local q, tsq = H.q, H.tsq

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local DOC = [[<?xml version="1.0"?>
<sequence version="3.00">
  <group name="Install" description="" disable="false" continueOnError="false">
    <step type="SMS_TaskSequence_RunCommandLineAction" name="Hello" description="" disable="false" continueOnError="false" successCodeList="0 3010" runIn="WinPEandFullOS">
      <defaultVarList>
        <variable name="CommandLine" property="CommandLine">cmd /c echo hello</variable>
      </defaultVarList>
      <action>smsswd.exe /run: cmd /c echo hello</action>
    </step>
    <step type="SMS_TaskSequence_RunCommandLineAction" name="Only in PE" description="" disable="false" continueOnError="false" successCodeList="0" runIn="WinPEandFullOS">
      <condition>
        <expression type="SMS_TaskSequence_VariableConditionExpression">
          <variable name="Operator">equals</variable>
          <variable name="Value">true</variable>
          <variable name="Variable">_SMSTSInWinPE</variable>
        </expression>
      </condition>
      <defaultVarList>
        <variable name="CommandLine" property="CommandLine">wpeutil reboot</variable>
      </defaultVarList>
      <action>smsswd.exe /run: wpeutil reboot</action>
    </step>
  </group>
  <step type="SMS_TaskSequence_RunCommandLineAction" name="Off" description="" disable="true" continueOnError="false" successCodeList="0" runIn="WinPEandFullOS">
    <defaultVarList>
      <variable name="CommandLine" property="CommandLine">cmd /c exit 1</variable>
    </defaultVarList>
    <action>smsswd.exe /run: cmd /c exit 1</action>
  </step>
</sequence>
]]

local dir, file
setup(function()
  dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. q(dir))
  file = dir .. "/ts.xml"
  write(file, DOC)
end)
teardown(function() os.execute("rm -rf " .. q(dir)) end)

describe("tsq, the host", function()
  it("prints its version", function()
    local out, _, rc = tsq("--version")
    assert.equals(0, rc)
    assert.matches("^tsq %d+%.%d+%.%d+ %(Lua 5%.4", out)
  end)

  it("lists every subcommand in --help", function()
    local out, _, rc = tsq("--help")
    assert.equals(0, rc)
    for _, c in ipairs { "run", "show", "eval", "simulate", "validate", "to-lua", "build", "fmt", "diff", "apply" } do
      assert.truthy(out:find("  " .. c .. " ", 1, true), c)
    end
  end)

  it("explains one command with help CMD", function()
    local out, _, rc = tsq("help", "apply")
    assert.equals(0, rc)
    assert.matches("^usage: tsq apply SCRIPT", out)
    assert.truthy(out:find("--continue-on-error", 1, true))
  end)

  it("fails with status 2 and a message for an unknown command", function()
    local _, err, rc = tsq("frobnicate")
    assert.equals(2, rc)
    assert.matches("unknown command 'frobnicate'", err)
  end)

  it("names the command once in a usage error, and exits 2", function()
    local cases = {
      { { "show" }, "tsq show: one FILE expected\n" },
      { { "show", "--bogus", "x.xml" }, "tsq show: unknown option --bogus\n" },
      { { "eval", "x.xml", "--machine" }, "tsq eval: --machine wants a value\n" },
      { { "to-lua" }, "tsq to-lua: one FILE expected\n" },
      { { "diff", "a.xml" }, "tsq diff: two files expected (tsq diff A B)\n" },
      { { "apply", "--nope" }, "tsq apply: unknown option --nope\n" },
      { { "help", "nothing" }, "tsq help: no such command: nothing\n" },
    }
    for _, c in ipairs(cases) do
      local _, err, rc = tsq(table.unpack(c[1]))
      assert.equals(2, rc)
      assert.equals(c[2], err)
    end
  end)

  it("runs a script with arg set as lua sets it", function()
    local s = dir .. "/args.lua"
    write(s, [[print(arg[0], arg[1], arg[2], select("#", ...), (...)) ; print(arg[-1] ~= nil)]])
    local out, _, rc = tsq("run", s, "a", "b c")
    assert.equals(0, rc)
    assert.equals(s .. "\ta\tb c\t2\ta\ntrue\n", out)
  end)

  it("finds the tasksequence module from a script", function()
    local s = dir .. "/mod.lua"
    write(s, [[local ts = require "tasksequence"; print(type(ts.load), type(ts.parse))]])
    local out, err, rc = tsq("run", s)
    assert.equals(0, rc, err)
    assert.equals("function\tfunction\n", out)
  end)

  it("keeps warnings off until a script turns them on, as lua does", function()
    local s = dir .. "/warn.lua"
    write(s, [[warn("hidden") warn("@on") warn("shown ", "in two") warn("@off") warn("hidden")]])
    local out, err, rc = tsq("run", s)
    assert.equals(0, rc, err)
    assert.equals("", out)
    assert.equals("Lua warning: shown in two\n", err)
  end)

  -- The host's states take small blocks from free lists by size (TSQ_NO_POOL=1: malloc):
  -- blocks that grow and shrink across the small/large line keep their contents.
  for _, pooled in ipairs { true, false } do
    it("keeps every block's contents across growing and shrinking" .. (pooled and "" or " (TSQ_NO_POOL)"), function()
      local s = dir .. "/blocks.lua"
      write(s, [[
local sum = 0
for round = 1, 3 do
  local t = {}
  for i = 1, 2000 do t[i] = ("x"):rep(i % 600) .. i end   -- strings of every size class and beyond
  for i = 2000, 1, -1 do if i % 3 == 0 then table.remove(t, i) end end
  local h = {}
  for i = 1, 300 do h["k" .. i] = i end                    -- a hash part through every size
  for i = 1, 290 do h["k" .. i] = nil end
  collectgarbage()
  for k, v in pairs(h) do sum = sum + v end
  for i = 1, #t do assert(t[i]:sub(-#tostring(i)) ~= nil) sum = sum + #t[i] end
end
local ts = require "tasksequence"
local seq = ts.sequence "blocks"
for i = 1, 500 do seq:add(ts.RunCommandLine { Name = ("n"):rep(i % 300) .. i, CommandLine = "cmd " .. i }) end
collectgarbage()
local names = 0
for step in seq:steps() do names = names + #step.Name end
print(sum, names, #seq:to_xml() > 0)
]])
      local cmd = (pooled and "" or "TSQ_NO_POOL=1 ") .. q(BIN) .. " run " .. q(s)
      local p = io.popen(cmd .. " 2>&1; echo \"@@$?\"")
      local out = p:read("a")
      p:close()
      local expect_sum = 0
      for _ = 1, 3 do
        local t = {}
        for i = 1, 2000 do t[i] = ("x"):rep(i % 600) .. i end
        for i = 2000, 1, -1 do if i % 3 == 0 then table.remove(t, i) end end
        for i = 291, 300 do expect_sum = expect_sum + i end
        for i = 1, #t do expect_sum = expect_sum + #t[i] end
      end
      local names = 0
      for i = 1, 500 do names = names + i % 300 + #tostring(i) end
      assert.equals(("%d\t%d\ttrue\n@@0\n"):format(expect_sum, names), out)
    end)
  end

  it("runs the script's finalizers and flushes its files at exit, documents still open", function()
    -- tsq leaves the core's trees to the operating system at exit (ltsq_exiting), but the
    -- state is closed as lua closes it: __gc and open files behave as under lua
    local s, out1, out2 = dir .. "/atexit.lua", dir .. "/atexit1.txt", dir .. "/atexit2.txt"
    write(s, ([[
local ts = require "tasksequence"
keep = { ts.load(%q), ts.sequence "new" { ts.group "g" { ts.RunCommandLine "a" } } }
keep[3] = keep[1][1]
local f = io.open(%q, "w")
f:write("unclosed and unflushed")
setmetatable({}, { __gc = function() local g = io.open(%q, "w") g:write("finalized ", #keep[1]) g:close() end })
_G.f = f
]]):format(file, out1, out2))
    local _, err, rc = tsq("run", s)
    assert.equals(0, rc, err)
    assert.equals("unclosed and unflushed", read(out1))
    assert.equals("finalized 2", read(out2))
  end)

  it("exits 1 with a traceback when a script raises", function()
    local s = dir .. "/boom.lua"
    write(s, [[local function f() error("boom") end f()]])
    local _, err, rc = tsq("run", s)
    assert.equals(1, rc)
    assert.matches("boom", err)
    assert.matches("stack traceback", err)
  end)
end)

describe("tsq show", function()
  it("prints the tree with index paths, classes, flags and conditions", function()
    local out, err, rc = tsq("show", file)
    assert.equals(0, rc, err)
    assert.truthy(out:find("  1 Install [group]\n", 1, true), out)
    assert.truthy(out:find("    1.1 Hello [RunCommandLine]\n", 1, true), out)
    assert.truthy(out:find("    1.2 Only in PE [RunCommandLine]\n", 1, true), out)
    assert.truthy(out:find("        if _SMSTSInWinPE", 1, true), out)
    assert.truthy(out:find("  2 Off [RunCommandLine] (disabled)\n", 1, true), out)
  end)

  it("reports a missing file with status 2", function()
    local _, err, rc = tsq("show", dir .. "/nope.xml")
    assert.equals(2, rc)
    assert.matches("nope%.xml", err)
  end)
end)

describe("tsq eval", function()
  it("marks steps run or skip with the reason", function()
    local out, err, rc = tsq("eval", file, "--var", "_SMSTSInWinPE=false")
    assert.equals(0, rc, err)
    assert.matches("\n    run%s+1%.1 Hello %[RunCommandLine%]\n", out)
    assert.matches('\n    skip 1%.2 Only in PE %[RunCommandLine%]: condition is false: _SMSTSInWinPE equals "true" '
      .. '%(_SMSTSInWinPE is "false"%)\n', out)
    assert.matches("\n  skip 2 Off %[RunCommandLine%]: disabled\n", out)
    assert.matches("2 run, 2 skipped\n$", out)
  end)

  it("takes variables from a machine file", function()
    local m = dir .. "/machine.lua"
    write(m, [[return { variables = { _SMSTSInWinPE = "true" } }]])
    local out, err, rc = tsq("eval", file, "--machine", m)
    assert.equals(0, rc, err)
    assert.matches("run%s+1%.2 Only in PE", out)
  end)
end)

describe("tsq simulate", function()
  it("prints a table and says whether the run succeeded", function()
    local out, err, rc = tsq("simulate", file, "--var", "_SMSTSInWinPE=true")
    assert.equals(0, rc, err)
    assert.matches("^Step%s+GroupName%s+ActionName%s+ExitCode%s+LastStatusMsgName\n", out)
    assert.matches("Hello", out)
    assert.matches("succeeded\n$", out)
  end)

  it("writes CSV with the SDK field names", function()
    local out, err, rc = tsq("simulate", file, "--format", "csv")
    assert.equals(0, rc, err)
    assert.equals("ActionName,ActionOutput,AdvertisementID,ExecutionTime,ExitCode,GroupName,LastStatusMsgID,"
      .. "LastStatusMsgName,PackageID,ResourceID,Step\r\n", out:match("^[^\n]*\n"))
  end)

  it("writes JSON lines and uses the exit codes given", function()
    local out, err, rc = tsq("simulate", file, "--format", "json", "--exit", "Hello=5")
    assert.equals(1, rc, err)
    local found = false
    for line in out:gmatch("[^\n]+") do
      assert.matches('^{"ActionName":', line)
      if line:find('"ActionName":"Hello"', 1, true) and line:find('"ExitCode":5', 1, true) then found = true end
    end
    assert.is_true(found, out)
  end)

  it("refuses an unknown format", function()
    local _, err, rc = tsq("simulate", file, "--format", "xml")
    assert.equals(2, rc)
    assert.matches("table, csv or json", err)
  end)
end)

describe("tsq validate", function()
  it("is quiet and exits 0 for a good document", function()
    local out, err, rc = tsq("validate", file)
    assert.equals(0, rc, out .. err)
  end)

  it("reports an unreadable document with its path and exits 1", function()
    local bad = dir .. "/bad.xml"
    write(bad, "<sequence><group></sequence>")
    local out, _, rc = tsq("validate", bad)
    assert.equals(1, rc)
    assert.matches("bad%.xml", out)
  end)
end)

describe("tsq to-lua and tsq build", function()
  it("prints a script that builds the same document", function()
    local out, err, rc = tsq("to-lua", file)
    assert.equals(0, rc, err)
    assert.matches('ts%.group "Install" {', out)
    assert.matches('ts%.RunCommandLine "Hello" {', out)
    local s = dir .. "/back.lua"
    write(s, out)
    local xml, err2, rc2 = tsq("build", s)
    assert.equals(0, rc2, err2)
    local ts = require "tasksequence"
    assert.equals(ts.parse(DOC):to_xml({ canonical = true }), ts.parse(xml):to_xml({ canonical = true }))
  end)

  it("saves with -o", function()
    local s = dir .. "/b.lua"
    write(s, [[local ts = require "tasksequence"
return ts.sequence { ts.group { Name = "G", ts.RunCommandLine { Name = "x", CommandLine = "cmd" } } }]])
    local out, err, rc = tsq("build", s, "-o", dir .. "/built.xml")
    assert.equals(0, rc, err)
    assert.equals("", out)
    assert.matches('<group name="G"', read(dir .. "/built.xml"))
  end)

  it("names the script's line and the step for a misspelled property or class", function()
    local s = dir .. "/typo.lua"
    write(s, 'local ts = require "tasksequence"\nreturn ts.sequence "S" {\n  ts.RunCommandLine "x" { CommandLin = "cmd" },\n}\n')
    local _, err, rc = tsq("build", s)
    assert.equals(2, rc)
    assert.equals("tsq build: " .. s .. ':3: RunCommandLine "x": RunCommandLine has no property "CommandLin"',
      err:match("^[^;]*"))
    write(s, 'local ts = require "tasksequence"\nreturn ts.sequence "S" {\n  ts.RunComandLine "x" {},\n}\n')
    _, err, rc = tsq("build", s)
    assert.equals(2, rc)
    assert.equals("tsq build: " .. s .. ":3: unknown action class 'RunComandLine' (did you mean 'RunCommandLine'?)\n", err)
  end)

  it("says so when the script returns no sequence", function()
    local s = dir .. "/n.lua"
    write(s, "return 42")
    local _, err, rc = tsq("build", s)
    assert.equals(2, rc)
    assert.matches("must return a sequence", err)
  end)
end)

describe("tsq fmt", function()
  it("rewrites a file in the canonical layout, idempotently", function()
    local f = dir .. "/fmt.xml"
    write(f, (DOC:gsub("\n  ", "\n\t")))
    local _, err, rc = tsq("fmt", f)
    assert.equals(0, rc, err)
    local once = read(f)
    assert.matches('^<sequence version="3.00">\n  <group name="Install"', once)
    assert.matches('\n    <step type="SMS_TaskSequence_RunCommandLineAction" name="Hello"', once)
    tsq("fmt", f)
    assert.equals(once, read(f))
    local _, _, rc2 = tsq("fmt", "--check", f)
    assert.equals(0, rc2)
  end)
end)

describe("tsq diff", function()
  it("exits 0 for the same document", function()
    local out, _, rc = tsq("diff", file, file)
    assert.equals(0, rc)
    assert.equals("", out)
  end)

  it("lists the changes and exits 1", function()
    local b = dir .. "/b.xml"
    write(b, (DOC:gsub("cmd /c echo hello", "cmd /c echo bye")))
    local out, _, rc = tsq("diff", file, b)
    assert.equals(1, rc)
    assert.matches('~ changed Install/Hello: CommandLine "cmd /c echo hello" %-> "cmd /c echo bye"', out)
    local js = tsq("diff", file, b, "--format", "json")
    assert.matches('"change":"changed"', js)
    assert.matches('"path":"Install/Hello"', js)
  end)
end)

describe("the examples", function()
  local ts = require "tasksequence"

  local function depth_max(seq)
    local m = 0
    for s in seq:steps() do
      local d, p = 0, s.parent
      while p do d, p = d + 1, p.parent end
      if s.kind == "group" and d > m then m = d end
    end
    return m
  end

  it("demo.lua prints the tree and the XML and writes the file", function()
    local out_file = dir .. "/demo.xml"
    local out, err, rc = tsq("run", "examples/demo.lua", out_file)
    assert.equals(0, rc, err)
    assert.matches("^Windows 11 Enterprise %- Deploy\n  Initialize\n", out)
    assert.matches("\n<sequence version=", out)
    local seq = assert(ts.load(out_file))
    assert.is_true(depth_max(seq) >= 3)
    local classes = {}
    for s in seq:steps() do if s.kind == "action" then classes[s.type] = true end end
    local n = 0
    for _ in pairs(classes) do n = n + 1 end
    assert.is_true(n >= 5)
    local texts = {}
    for s in seq:steps() do if s.Condition then texts[#texts + 1] = tostring(s.Condition) end end
    local all = table.concat(texts, "\n")
    assert.matches(" or ", all)
    assert.matches("not ", all)
    assert.matches(" and ", all)
  end)

  for _, name in ipairs { "bare_metal", "in_place_upgrade", "drivers_by_model" } do
    it(name .. ".lua builds a valid sequence", function()
      local xml, err, rc = tsq("build", "examples/" .. name .. ".lua")
      assert.equals(0, rc, err)
      local seq = assert(ts.parse(xml))
      for _, p in ipairs(seq:validate()) do
        assert.are_not.equal("error", p.severity, p.message)
      end
      assert.is_true(#seq:find { kind = "action" } >= 3)
    end)
  end

  it("drivers_by_model.lua has one driver step per model, each with its condition", function()
    local xml = tsq("build", "examples/drivers_by_model.lua")
    local seq = assert(ts.parse(xml))
    local steps = seq:find { type = "ApplyDriverPackage" }
    assert.equals(5, #steps)
    for _, s in ipairs(steps) do
      assert.matches(s.Name, tostring(s.Condition), 1, true)
    end
  end)
end)
