-- seq:plan returns a plan object: entries are tables made when read, the same table each
-- time, and the plan keeps its steps alive whatever happens to the sequence afterwards.
local ts = require "tasksequence"

local function doc()
  return ts.sequence "s" {
    ts.RunCommandLine "a" { CommandLine = "x" },
    ts.group "g" {
      Condition = ts.condition 'Phase equals "install"',
      ts.RunCommandLine "b" { CommandLine = "x" },
    },
    ts.RunCommandLine "c" { CommandLine = "x", Enabled = false },
  }
end

describe("a plan", function()
  local env = ts.environment { variables = { Phase = "capture" } }

  it("has one entry per step, readable by index, ipairs and pairs", function()
    local plan = doc():plan(env)
    assert.equals(4, #plan)
    local names, states = {}, {}
    for i, e in ipairs(plan) do names[i], states[i] = e.step.Name, e.state end
    assert.same({ "a", "g", "b", "c" }, names)
    assert.same({ "run", "skip_condition", "skip_parent", "disabled" }, states)
    local n = 0
    for i, e in pairs(plan) do
      n = n + 1
      assert.equals(plan[i], e)
    end
    assert.equals(4, n)
    assert.is_nil(plan[0])
    assert.is_nil(plan[5])
    assert.is_nil(plan.state)
  end)

  it("gives the same entry table each time and a reason only where there is one", function()
    local plan = doc():plan(env)
    assert.equals(plan[2], plan[2])
    assert.is_nil(plan[1].reason)
    assert.matches("condition is false", plan[2].reason)
    assert.equals("group 'g' is skipped by its condition", plan[3].reason)
    assert.equals("disabled", plan[4].reason)
  end)

  it("says what it holds when printed", function()
    assert.equals("plan (4 steps: 1 run, 1 skipped by condition, 1 disabled, 1 in skipped groups, 0 undecided)",
      tostring(doc():plan(env)))
  end)

  it("keeps its steps alive after the sequence drops them", function()
    local seq = doc()
    local plan = seq:plan(env)
    local removed = seq[2]:remove()
    removed = nil -- luacheck: ignore
    seq = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.equals("b", plan[3].step.Name)
    assert.equals("g", plan[3].step.parent.Name)
    plan = nil -- luacheck: ignore
    collectgarbage()
  end)

  it("plans a large sequence and reads any of its entries", function()
    local g = ts.group "many" {}
    for i = 1, 5000 do g:add(ts.RunCommandLine { Name = "s" .. i, CommandLine = "x" }) end
    local plan = ts.sequence "big" { g }:plan(env)
    assert.equals(5001, #plan)
    assert.equals("s5000", plan[5001].step.Name)
    assert.equals("run", plan[5001].state)
  end)

  it("asks a Lua provider once per distinct fact in a plan, and again in the next plan", function()
    local asked = {}
    local fenv = ts.environment {
      wmi = function(_, q) asked[q] = (asked[q] or 0) + 1; return q:find("Battery", 1, true) and 1 or 0 end,
    }
    local laptop = ts.condition 'wmi "SELECT * FROM Win32_Battery"'
    local fan = ts.condition 'wmi "SELECT * FROM Win32_Fan"'
    local seq = ts.sequence "facts" {}
    for i = 1, 6 do
      seq:add(ts.RunCommandLine { Name = "s" .. i, CommandLine = "x", Condition = i % 3 == 0 and fan or laptop })
    end
    local plan = seq:plan(fenv)
    assert.same({ ["SELECT * FROM Win32_Battery"] = 1, ["SELECT * FROM Win32_Fan"] = 1 }, asked)
    assert.equals("run", plan[2].state)
    assert.equals("skip_condition", plan[3].state)
    seq:plan(fenv)
    assert.same({ ["SELECT * FROM Win32_Battery"] = 2, ["SELECT * FROM Win32_Fan"] = 2 }, asked)
  end)
end)
