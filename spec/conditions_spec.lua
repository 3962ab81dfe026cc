local ts = require "tasksequence"
local H = require "helpers"

local TEXT = '_SMSTSInWinPE equals "false" and (Model like "%Latitude%" or not wmi "SELECT * FROM Win32_Battery")'

describe("condition constructors", function()
  it("build a condition whose operands must all hold", function()
    local c = ts.condition { ts.variable("A", "equals", "1"), ts.variable("B", "exists") }
    assert.are.equal("condition", c.kind)
    assert.are.equal(2, #c)
    assert.are.equal('A equals "1" and B exists', tostring(c))
  end)

  it("build and, or and not operators", function()
    assert.are.equal("and", ts.all { ts.variable("A", "exists") }.kind)
    assert.are.equal("or", ts.any { ts.variable("A", "exists") }.kind)
    assert.are.equal("not", ts.none { ts.variable("A", "exists") }.kind)
  end)

  it("build variable expressions", function()
    local v = ts.variable("OSDComputerName", "like", "PC%")
    assert.are.equal("expression", v.kind)
    assert.are.equal("SMS_TaskSequence_VariableConditionExpression", v.class)
    assert.are.same({ "OSDComputerName", "like", "PC%" }, { v.Variable, v.Operator, v.Value })
  end)

  it("turn numbers and booleans into variable values", function()
    assert.are.equal("3", ts.variable("A", "equals", 3).Value)
    assert.are.equal("false", ts.variable("A", "equals", false).Value)
  end)

  it("build WMI expressions in root\\cimv2 by default", function()
    local w = ts.wmi("SELECT * FROM Win32_Battery")
    assert.are.equal("root\\cimv2", w.Namespace)
    assert.are.equal("SELECT * FROM Win32_Battery", w.Query)
    assert.are.equal("root\\wmi", ts.wmi("SELECT 1", "root\\wmi").Namespace)
  end)

  it("build file, folder, registry and software expressions", function()
    assert.are.equal("SMS_TaskSequence_FileConditionExpression", ts.file { Path = "C:\\x" }.class)
    assert.are.equal("SMS_TaskSequence_FolderConditionExpression", ts.folder { Path = "C:\\x" }.class)
    local r = ts.registry { KeyPath = "HKLM\\Software\\X", Value = "V", Type = "REG_SZ", Operator = "equals", Data = "1" }
    assert.are.equal("SMS_TaskSequence_RegistryConditionExpression", r.class)
    assert.are.equal("REG_SZ", r.Type)
    local s = ts.software { Operator = "AnyVersion", ProductCode = "{A}" }
    assert.are.equal("SMS_TaskSequence_SoftwareConditionExpression", s.class)
    assert.are.same({ Operator = "AnyVersion", ProductCode = "{A}" }, s.values)
  end)

  it("reject unknown fields, listing the valid ones", function()
    assert.are.equal("unknown field 'Pth' in file condition (valid: DateTime, DateTimeOperator, Path, Version, VersionOperator)",
      H.errmsg(function() return ts.file { Pth = "x" } end))
  end)

  it("reject operands that are not conditions", function()
    assert.are.equal("bad operand to 'all' (condition expected, got number)",
      H.errmsg(function() return ts.all { 5 } end))
  end)

  it("build expressions of any class", function()
    local e = ts.expression("SMS_TaskSequence_ComputerConditionExpression", { UUID = "u", AssetTag = "a" })
    assert.are.equal("SMS_TaskSequence_ComputerConditionExpression", e.class)
    assert.are.equal("u", e.UUID)
  end)
end)

describe("condition text", function()
  it("parses and prints back exactly", function()
    assert.are.equal(TEXT, tostring(ts.condition(TEXT)))
  end)

  it("is what tostring gives for a built condition", function()
    local c = ts.condition {
      ts.variable("_SMSTSInWinPE", "equals", "false"),
      ts.any { ts.variable("Model", "like", "%Latitude%"), ts.none { ts.wmi("SELECT * FROM Win32_Battery") } },
    }
    assert.are.equal(TEXT, tostring(c))
    assert.are.equal(ts.condition(TEXT), c)
  end)

  it("raises on malformed text", function()
    assert.truthy(not pcall(ts.condition, 'A equals "1" and ('))
  end)

  it("gives operands by index, as copies", function()
    local c = ts.condition(TEXT)
    assert.are.equal("expression", c[1].kind)
    assert.are.equal("or", c[2].kind)
    assert.are.equal("not", c[2][2].kind)
    assert.is_nil(c[3])
  end)
end)

describe("condition values", function()
  it("compare by structure", function()
    assert.are.equal(ts.variable("A", "exists"), ts.variable("A", "exists"))
    assert.are_not.equal(ts.variable("A", "exists"), ts.variable("B", "exists"))
  end)

  it("are copied by add and clone", function()
    local op = ts.variable("A", "exists")
    local c = ts.condition {}
    c:add(op)
    op.Variable = "Z"
    assert.are.equal("A exists", tostring(c))
    local d = c:clone()
    d:add(ts.variable("B", "exists"))
    assert.are.equal(1, #c)
    assert.are.equal(2, #d)
  end)

  it("raise on unknown lowercase fields", function()
    assert.are.equal("no field 'nope' on condition", H.errmsg(function() return ts.variable("A", "exists").nope end))
  end)
end)

describe("environments", function()
  it("hold variables, case-insensitively", function()
    local env = ts.environment { variables = { OSDComputerName = "PC01" } }
    assert.are.equal("PC01", env.variables.osdcomputername)
    assert.are.equal("PC01", env:get("OSDCOMPUTERNAME"))
  end)

  it("let variables be set and deleted through the view", function()
    local env = ts.environment {}
    env.variables.Foo = "bar"
    env.variables.Num = 5
    assert.are.equal("bar", env.variables.foo)
    assert.are.equal("5", env.variables.Num)
    env.variables.Foo = nil
    assert.is_nil(env.variables.Foo)
  end)

  it("iterate their variables with pairs", function()
    local env = ts.environment { variables = { A = "1", B = "2" } }
    local got = {}
    for k, v in pairs(env.variables) do got[k] = v end
    assert.are.same({ A = "1", B = "2" }, got)
    assert.are.equal(2, #env.variables)
  end)

  it("expand %VAR% references", function()
    local env = ts.environment { variables = { Server = "srv01" } }
    assert.are.equal("\\\\srv01\\share %Unknown%", env:expand("\\\\%Server%\\share %Unknown%"))
  end)

  it("print their size", function()
    assert.are.equal("environment (1 variable)", tostring(ts.environment { variables = { A = "1" } }))
  end)

  it("reject unknown fields", function()
    assert.are.equal("unknown field 'wmii' in environment (valid: variables, wmi, files, folders, registry, software)",
      H.errmsg(function() return ts.environment { wmii = {} } end))
  end)
end)

describe("evaluation", function()
  local env
  before_each(function()
    env = ts.environment {
      variables = { A = "1", Model = "Latitude 7420" },
      wmi = { ["SELECT * FROM Win32_Battery"] = { {} } },
      files = { ["C:\\x.txt"] = { Version = "1.2.3" } },
      folders = { ["C:\\Windows"] = {} },
      registry = { ["HKLM\\Software\\X"] = { V = { Type = "REG_SZ", Data = "abc" } } },
      software = { { ProductCode = "{AAA}", Version = "1.0" } },
    }
  end)

  it("gives a boolean and a trace", function()
    local r, trace = ts.condition { ts.variable("A", "equals", "1") }:evaluate(env)
    assert.is_true(r)
    assert.is_true(#trace >= 1)
    local e = trace[#trace]
    assert.are.equal("number", type(e.depth))
    assert.are.equal("boolean", type(e.result))
    assert.are.equal("string", type(e.operand))
  end)

  it("evaluates nested operators", function()
    local laptop = ts.environment { variables = { _SMSTSInWinPE = "false", Model = "Latitude 1" },
                                    wmi = { ["SELECT * FROM Win32_Battery"] = 1 } }
    assert.is_true((ts.condition(TEXT):evaluate(laptop)))
    laptop.variables.Model = "Optiplex"
    assert.is_false((ts.condition(TEXT):evaluate(laptop)))
    assert.is_true((ts.condition('A equals "1" and (B exists or not C exists)'):evaluate(env)))
    assert.is_false((ts.condition('A equals "2" or B exists'):evaluate(env)))
  end)

  it("asks WMI tables and functions", function()
    assert.is_true((ts.wmi("SELECT * FROM Win32_Battery"):evaluate(env)))
    local seen
    local fenv = ts.environment { wmi = function(ns, q) seen = ns .. "|" .. q; return 0 end }
    assert.is_false((ts.wmi("SELECT 1"):evaluate(fenv)))
    assert.are.equal("root\\cimv2|SELECT 1", seen)
  end)

  it("asks files, folders, registry and software", function()
    assert.is_true((ts.file { Path = "C:\\x.txt" }:evaluate(env)))
    assert.is_false((ts.file { Path = "C:\\y.txt" }:evaluate(env)))
    assert.is_true((ts.folder { Path = "C:\\Windows" }:evaluate(env)))
    assert.is_true((ts.registry { KeyPath = "HKLM\\Software\\X", Value = "V", Type = "REG_SZ", Operator = "equals", Data = "abc" }:evaluate(env)))
    assert.is_true((ts.software { Operator = "AnyVersion", ProductCode = "{AAA}" }:evaluate(env)))
    assert.is_false((ts.software { Operator = "AnyVersion", ProductCode = "{BBB}" }:evaluate(env)))
  end)

  it("returns nil and a message when a fact is not described", function()
    local r, msg = ts.wmi("SELECT * FROM Other"):evaluate(env)
    assert.is_nil(r)
    assert.truthy(msg:find("SELECT * FROM Other", 1, true), msg)
  end)

  it("turns a provider's error into a failed fact", function()
    local bad = ts.environment { wmi = function() error("provider exploded") end }
    local r, msg = ts.wmi("SELECT 1"):evaluate(bad)
    assert.is_nil(r)
    assert.truthy(msg:find("provider exploded", 1, true), msg)
  end)

  it("works without an environment for conditions on nothing", function()
    assert.is_false((ts.variable("A", "exists"):evaluate()))
  end)
end)

describe("plans", function()
  it("say which steps would run and why others would not", function()
    local seq = ts.sequence "s" {
      ts.RunCommandLine "a" { CommandLine = "x" },
      ts.RunCommandLine "b" { CommandLine = "x", Condition = ts.variable("A", "equals", "2") },
      ts.RunCommandLine "c" { CommandLine = "x", Enabled = false },
    }
    local plan = assert(seq:plan(ts.environment { variables = { A = "1" } }))
    assert.are.equal(3, #plan)
    assert.are.equal(seq[1], plan[1].step)
    assert.are.same({ "run", "skip_condition", "disabled" }, { plan[1].state, plan[2].state, plan[3].state })
    assert.is_nil(plan[1].reason)
    assert.are.equal("string", type(plan[2].reason))
  end)
end)
