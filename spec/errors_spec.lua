local ts = require "tasksequence"
local H = require "helpers"

local function demo()
  return ts.sequence "s" {
    ts.RunCommandLine "a" { CommandLine = "cmd /c a" },
    ts.group "g" { ts.SetVariable "v" { VariableName = "Foo", VariableValue = "Bar" } },
  }
end

describe("running", function()
  it("returns records, success and the final variables", function()
    local r = demo():run { AdvertisementID = "PS120001", PackageID = "PS100123", ResourceID = 16777220 }
    assert.is_true(r.succeeded)
    assert.is_true(#r.records >= 2)
    local rec = r.records[1]
    for _, k in ipairs { "ActionName", "ActionOutput", "AdvertisementID", "ExecutionTime", "ExitCode",
                         "GroupName", "LastStatusMsgID", "LastStatusMsgName", "PackageID", "ResourceID", "Step" } do
      assert.is_not_nil(rec[k], k)
    end
    assert.are.equal("PS120001", rec.AdvertisementID)
    assert.are.equal(16777220, rec.ResourceID)
    assert.are.equal("Bar", r.variables.Foo)
  end)

  it("calls handlers by short class name with the step and the environment", function()
    local seen = {}
    local r = demo():run { handlers = { RunCommandLine = function(step, env)
      seen[#seen + 1] = step.Name
      assert.is_true(ts.is_environment(env))
      return 0, "hello from " .. step.Name
    end } }
    assert.are.same({ "a" }, seen)
    local out
    for _, rec in ipairs(r.records) do if rec.ActionName == "a" then out = rec.ActionOutput end end
    assert.are.equal("hello from a", out)
  end)

  it("calls the default handler for the other classes", function()
    local n = 0
    demo():run { handlers = { default = function() n = n + 1; return 0 end } }
    assert.is_true(n >= 1)
  end)

  it("fails a step whose handler raises, with the message as output", function()
    local r = demo():run { handlers = { RunCommandLine = function() error("handler exploded", 0) end } }
    assert.is_false(r.succeeded)
    local rec
    for _, x in ipairs(r.records) do if x.ActionName == "a" then rec = x end end
    assert.are.equal("handler exploded", rec.ActionOutput)
  end)

  it("fails a step whose handler returns a non-zero exit code", function()
    local r = demo():run { handlers = { RunCommandLine = 5 } }
    assert.is_false(r.succeeded)
  end)

  it("does not change the caller's environment", function()
    local env = ts.environment { variables = { X = "1" } }
    local r = demo():run { env = env }
    assert.are.equal("Bar", r.variables.Foo)
    assert.is_nil(env.variables.Foo)
    assert.are.equal("Bar", r.env.variables.Foo)
  end)

  it("uses the clock it is given", function()
    local t = 1700000000
    local r = demo():run { clock = function() t = t + 10; return t end }
    assert.are.equal(1700000010, r.records[1].ExecutionTimeUnix)
  end)

  it("rejects unknown options", function()
    assert.are.equal("unknown run option 'handler' (valid: env, handlers, AdvertisementID, PackageID, ResourceID, clock, loader, sequences, max_reboots)",
      H.errmsg(function() demo():run { handler = {} } end))
  end)

  it("rejects handlers that are not functions", function()
    assert.are.equal("handler 'RunCommandLine' must be a function or an exit code (got string)",
      H.errmsg(function() demo():run { handlers = { RunCommandLine = "x" } } end))
  end)

  it("raises a clock's error after the run", function()
    assert.truthy(H.errmsg(function() demo():run { clock = function() error("no time", 0) end } end):find("no time", 1, true))
  end)
end)

describe("misuse", function()
  it("of step methods names the argument", function()
    local g = ts.group "g"
    assert.are.equal("bad argument #1 to 'add' (tasksequence.step expected, got table)", H.errmsg(function() g:add({}) end))
    assert.are.equal("bad argument #2 to 'add' (number expected, got string)",
      H.errmsg(function() g:add(ts.group "h", "x") end))
    assert.are.equal("bad argument #1 to 'child' (number expected, got no value)", H.errmsg(function() g:child() end))
  end)

  it("of methods on the wrong object raises", function()
    local g = ts.group "g"
    assert.are.equal("bad argument #1 to 'steps' (tasksequence.step expected, got table)",
      H.errmsg(function() g.steps({}) end))
  end)

  it("of condition methods names the argument", function()
    assert.are.equal("bad argument #1 to 'evaluate' (tasksequence.environment expected, got number)",
      H.errmsg(function() ts.variable("A", "exists"):evaluate(5) end))
    assert.are.equal("bad argument #1 to 'variable' (string expected, got no value)", H.errmsg(function() ts.variable() end))
  end)

  it("of environment fields raises", function()
    assert.are.equal("environment field 'wmi' must be a table or a function (got number)",
      H.errmsg(function() ts.environment { wmi = 5 } end))
    assert.are.equal("environment field 'variables' must be a table (got string)",
      H.errmsg(function() ts.environment { variables = "x" } end))
    assert.are.equal("no field 'nope' on environment", H.errmsg(function() return ts.environment {}.nope end))
  end)

  it("of a command on a group raises", function()
    assert.are.equal("a group has no command", H.errmsg(function() ts.group("g").command = "x" end))
  end)

  it("of to_xml on a detached step raises", function()
    assert.truthy(not pcall(function() return ts.group("g"):to_xml() end))
  end)

  it("of an index below 1 raises", function()
    assert.are.equal("bad argument #2 to 'add' (index out of range (1 to 1))",
      H.errmsg(function() ts.group("g"):add(ts.group "h", 0) end))
  end)

  it("of a property value that is a function raises", function()
    assert.are.equal('bad value for \'CommandLine\' (function is not a property value)',
      H.errmsg(function() ts.RunCommandLine("a").CommandLine = print end))
  end)

  it("of a list holding a non-string raises", function()
    assert.are.equal("bad value for 'ConfigFiles' (list of strings expected, item 2 is boolean)",
      H.errmsg(function() ts.CaptureUserState("c").ConfigFiles = { "a", true } end))
  end)
end)

describe("documents that fail", function()
  it("return nil and a message with the position from parse", function()
    local seq, err = ts.parse("<sequence version='3.10'>\n  <group name='x'>\n</sequence>", "doc.xml")
    assert.is_nil(seq)
    assert.truthy(err:match("^doc%.xml:3:%d+: "), err)
  end)

  it("return nil and a message from load on an empty file", function()
    local dir = H.tmpdir()
    H.write(dir .. "/empty.xml", "")
    local seq, err = ts.load(dir .. "/empty.xml")
    H.rm_rf(dir)
    assert.is_nil(seq)
    assert.truthy(err:find("empty.xml", 1, true))
  end)

  it("never raise for hostile input", function()
    local texts = { "", "<", "<sequence", "<?xml version='1.0'?>", string.rep("<group>", 1000),
                    "<!DOCTYPE x [<!ENTITY a 'b'>]><sequence version='3.10'>&a;</sequence>", "\0\1\2" }
    for _, t in ipairs(texts) do
      local ok, seq = pcall(ts.parse, t)
      assert.is_true(ok)
      if seq then assert.are.equal("sequence", seq.kind) end
    end
  end)
end)

describe("type checks", function()
  -- a file handle is a userdata of the same size as a step box: the tag inside tells them apart
  it("refuse another library's userdata of a box's size as a step or a condition", function()
    local g = ts.group "g"
    local ok, err = pcall(g.add, g, io.stdout)
    assert.is_false(ok)
    assert.matches("tasksequence.step expected, got FILE%*", err)
    assert.is_false(ts.is_step(io.stdout))
    assert.is_false(ts.is_condition(io.stdout))
    assert.has_error(function() g.Condition = io.stdout end)
  end)
end)
