-- cond:evaluate (result and trace) and seq:plan (run, skipped, disabled, in a skipped group,
-- undecided) from Lua, with facts given as tables and as functions.
local ts = require "tasksequence"

-- The same machine twice: facts as tables, and as functions answering the same.
local VARS = { A = "1", Model = "Latitude 7420", Count = "10" }
local WMI = { ["SELECT * FROM Win32_Battery"] = 1, ["SELECT none"] = 0 }
local FILES = { ["C:\\Windows\\notepad.exe"] = { Version = "10.0.19041.1", DateTime = "20200102030405.000000+000" } }
local FOLDERS = { ["C:\\Windows"] = {} }
local REG = { ["HKLM\\K"] = { V = { Type = "REG_DWORD", Data = 5 }, S = { Type = "REG_SZ", Data = "Hello" } } }
local SW = { { ProductCode = "{P1}", UpgradeCode = "{U1}", Version = "2.0" } }

local function tables()
  return ts.environment { variables = VARS, wmi = WMI, files = FILES, folders = FOLDERS, registry = REG, software = SW }
end

local function functions()
  return ts.environment {
    variables = VARS,
    wmi = function(ns, q) return ns == "root\\cimv2" and WMI[q] or nil end,
    files = function(path) return FILES[path] or false end,
    folders = function(path) return FOLDERS[path] or false end,
    registry = function(key, value) return REG[key] and REG[key][value] or false end,
    software = function(code, upgrade)
      for _, p in ipairs(SW) do
        if (upgrade and p.UpgradeCode or p.ProductCode) == code then return p end
      end
      return false
    end,
  }
end

-- text, expected result (nil: an error whose message contains `fact`)
local CASES = {
  { 'A equals "1"', true }, { 'a EQUALS "1"', true }, { 'A notEquals "1"', false },
  { 'Missing notEquals ""', false }, { 'Missing exists', false }, { 'Count greater "9"', true },
  { 'Count less "9"', false }, { 'Model like "%latitude%"', true }, { 'Model like "Lat?tude*"', true },
  { 'wmi "SELECT * FROM Win32_Battery"', true }, { 'wmi "SELECT none"', false },
  { 'wmi "SELECT * FROM Other"', nil, "wmi query SELECT * FROM Other is not described" },
  { 'file "C:\\\\Windows\\\\notepad.exe"', true }, { 'file "C:\\\\nope.exe"', false },
  { 'file "C:\\\\Windows\\\\notepad.exe" version greaterEqual "10.0.19041"', true },
  { 'file "C:\\\\Windows\\\\notepad.exe" datetime less "2021-01-01T00:00:00Z"', true },
  { 'folder "C:\\\\Windows"', true }, { 'folder "C:\\\\Temp"', false },
  { 'registry "HKLM\\\\K" "V" REG_DWORD greater "4"', true }, { 'registry "HKLM\\\\K" "V" REG_SZ exists', false },
  { 'registry "HKLM\\\\K" "S" REG_SZ equals "hello"', true }, { 'registry "HKLM\\\\K" "X" REG_SZ notExists', true },
  { 'software ThisVersion "{P1}"', true }, { 'software ThisVersion "{P2}"', false },
  { 'software AnyVersion "{P9}" upgrade "{U1}"', true },
  { 'A equals "1" and (Model like "%Lat%" or Missing exists)', true },
  { 'none(A exists, Missing exists)', false }, { 'not wmi "SELECT none"', true },
}

describe("cond:evaluate", function()
  for _, make in ipairs { { "tables", tables }, { "functions", functions } } do
    it("gives the same answers with facts as " .. make[1], function()
      local env = make[2]()
      for _, c in ipairs(CASES) do
        local r, trace = ts.condition(c[1]):evaluate(env)
        if c[3] then
          assert.is_nil(r, c[1])
          assert.equals(c[3], trace, c[1])
        else
          assert.equals(c[2], r, c[1])
          assert.equals("table", type(trace), c[1])
        end
      end
    end)
  end

  it("traces each operand with its depth, result and why", function()
    local function lines(text)
      local r, trace = ts.condition(text):evaluate(tables())
      local out = { tostring(r) }
      for _, e in ipairs(trace) do out[#out + 1] = ("%d %s %s | %s"):format(e.depth, e.result, e.operand, e.why) end
      return out
    end
    assert.same({ "true",
      '1 true A equals "1" | A is "1"',
      '2 true Model like "%Lat%" | Model is "Latitude 7420"',
      '1 true Model like "%Lat%" or Missing exists | an operand holds' },
      lines('A equals "1" and (Model like "%Lat%" or Missing exists)'))
    assert.same({ "false",
      '1 false OSDBuild exists | variable OSDBuild undefined' },
      lines('OSDBuild exists and A exists'))
    assert.same({ "false",
      '2 true wmi "SELECT * FROM Win32_Battery" | 1 rows',
      '1 false not wmi "SELECT * FROM Win32_Battery" | an operand holds' },
      lines('not wmi "SELECT * FROM Win32_Battery"'))
    assert.same({ "false", '1 false folder "C:\\\\Temp" | folder not found' }, lines('folder "C:\\\\Temp"'))
    assert.same({ "true", '1 true software ThisVersion "{P1}" | installed, version 2.0' }, lines('software ThisVersion "{P1}"'))
  end)

  it("expands %VAR% in paths and queries before asking", function()
    local asked
    local env = ts.environment { variables = { Drive = "D:" }, files = function(p) asked = p; return false end,
                                 wmi = function(_, q) asked = q; return 1 end }
    assert.is_false((ts.condition 'file "%Drive%\\\\x.exe"':evaluate(env)))
    assert.equals("D:\\x.exe", asked)
    assert.is_true((ts.condition 'wmi "SELECT * FROM Win32_LogicalDisk WHERE DeviceID=\'%Drive%\'"':evaluate(env)))
    assert.equals("SELECT * FROM Win32_LogicalDisk WHERE DeviceID='D:'", asked)
  end)
end)

describe("seq:plan", function()
  local function doc()
    return ts.sequence "plan" {
      ts.SetVariable "set role" { VariableName = "Role", VariableValue = "Client" },
      ts.RunCommandLine "server only" { CommandLine = "x", Condition = ts.condition 'Role equals "Server"' },
      ts.RunCommandLine "client only" { CommandLine = "x", Condition = ts.condition 'Role equals "Client"' },
      ts.RunCommandLine "off" { CommandLine = "x", Enabled = false, Condition = ts.condition 'wmi "never asked"' },
      ts.group "laptops" { Condition = ts.condition 'wmi "SELECT * FROM Win32_Battery"',
        ts.RunCommandLine "power plan" { CommandLine = "x" } },
      ts.group "disks" { Condition = ts.condition 'wmi "SELECT * FROM Win32_DiskDrive"',
        ts.group "inner" { ts.RunCommandLine "format" { CommandLine = "x" } } },
      ts.group "old" { Enabled = false, ts.RunCommandLine "legacy" { CommandLine = "x" } },
    }
  end

  local function states(plan)
    local out = {}
    for i, p in ipairs(plan) do out[i] = p.step.Name .. " " .. p.state .. (p.reason and (": " .. p.reason) or "") end
    return out
  end

  it("says for every step whether it runs, is skipped, disabled, in a skipped group or undecided", function()
    local env = ts.environment { variables = { Role = "Server" }, wmi = { ["SELECT * FROM Win32_Battery"] = 0 } }
    assert.same({
      "set role run",
      "server only run", -- the static environment: the Set step before it does not count
      "client only skip_condition: condition is false",
      "off disabled: disabled",
      "laptops skip_condition: condition is false",
      "power plan skip_parent: group 'laptops' is skipped by its condition",
      "disks error: wmi query SELECT * FROM Win32_DiskDrive is not described",
      "inner skip_parent: group 'disks' could not be evaluated",
      "format skip_parent: group 'disks' could not be evaluated",
      "old disabled: disabled",
      "legacy skip_parent: group 'old' is disabled",
    }, states(doc():plan(env)))
  end)

  it("differs from a run where an earlier step changes a variable, as documented", function()
    local env = ts.environment { variables = { Role = "Server" },
      wmi = { ["SELECT * FROM Win32_Battery"] = 0, ["SELECT * FROM Win32_DiskDrive"] = 1 } }
    local seq = doc()
    local plan = seq:plan(env)
    local r = seq:run { env = env }
    local first = {}
    for _, rec in ipairs(r.records) do first[rec.Step] = first[rec.Step] or rec.LastStatusMsgID end
    assert.equals("run", plan[2].state)
    assert.equals(11130, first[2]) -- the run set Role = Client first
    assert.equals("skip_condition", plan[3].state)
    assert.equals(11134, first[3])
    assert.equals("Server", env.variables.Role) -- neither plan nor run changed the caller's environment
  end)

  it("plans with an empty environment when none is given", function()
    local plan = ts.sequence "s" { ts.RunCommandLine "a" { CommandLine = "x", Condition = ts.condition "A exists" } }:plan()
    assert.equals("skip_condition", plan[1].state)
  end)
end)
