local ts = require "tasksequence"

-- a small deterministic generator, so failures reproduce
local function rng(seed)
  local x = seed
  return function(n)
    x = (x * 1103515245 + 12345) % 2147483648
    return x % n + 1
  end
end

local function shuffle(t, r)
  for i = #t, 2, -1 do
    local j = r(i)
    t[i], t[j] = t[j], t[i]
  end
end

describe("garbage collection", function()
  it("frees thousands of steps dropped in random order", function()
    local r = rng(1)
    for _ = 1, 5 do
      local pool = {}
      for i = 1, 2000 do
        local k = r(3)
        if k == 1 then pool[i] = ts.group("g" .. i)
        elseif k == 2 then pool[i] = ts.RunCommandLine { Name = "a" .. i, CommandLine = "x" }
        else pool[i] = ts.sequence("s" .. i) end
      end
      -- random parent links between them (skipping the illegal ones)
      for i = 1, 2000 do
        local p, c = pool[r(2000)], pool[i]
        if p.kind ~= "action" and c.kind ~= "sequence" and not c.parent then pcall(p.add, p, c) end
      end
      shuffle(pool, r)
      for i = 1, #pool do
        pool[i] = nil
        if i % 250 == 0 then collectgarbage() end
      end
      collectgarbage()
      collectgarbage()
    end
  end)

  it("keeps children usable after their parent is dropped", function()
    local kids = {}
    do
      local g = ts.group "parent"
      for i = 1, 100 do kids[i] = g:add(ts.RunCommandLine { Name = "k" .. i, CommandLine = "x" }) end
    end
    collectgarbage()
    collectgarbage()
    for i = 1, 100 do
      assert.are.equal("k" .. i, kids[i].Name)
      assert.are.equal("parent", kids[i].parent.Name)
    end
  end)

  it("frees parents after their children are dropped", function()
    local g = ts.group "parent"
    for i = 1, 100 do g:add(ts.RunCommandLine("k" .. i)) end
    collectgarbage()
    collectgarbage()
    assert.are.equal(100, #g)
    assert.are.equal("k50", g[50].Name)
  end)

  it("keeps steps usable after their sequence is dropped", function()
    local step
    do
      local seq = ts.sequence "s" { ts.group "g" { ts.RunCommandLine "deep" { CommandLine = "x" } } }
      step = seq[1][1]
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal("deep", step.Name)
    assert.are.equal("g/deep", step.path)
    assert.truthy(step.sequence:to_xml():find('name="deep"', 1, true))
  end)

  it("frees a removed step's old tree independently", function()
    local removed
    do
      local seq = ts.sequence "s" { ts.group "g" { ts.RunCommandLine "x" } }
      removed = seq[1]:remove()
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(1, #removed)
    assert.is_nil(removed.parent)
  end)

  it("gives a new box with the same node after the old box was collected", function()
    local g = ts.group "g" { ts.RunCommandLine "x" }
    local addr = tostring(g[1])
    collectgarbage()
    collectgarbage()
    assert.are.equal(addr, tostring(g[1]))
    assert.are.equal(g, g[1].parent)
  end)

  it("frees thousands of conditions and environments", function()
    local r = rng(7)
    local keep = {}
    for i = 1, 3000 do
      local c = ts.condition { ts.variable("V" .. i, "equals", i), ts.any { ts.wmi("SELECT " .. i) } }
      if r(3) == 1 then keep[#keep + 1] = c end
      local e = ts.environment { variables = { A = i }, wmi = function() return i end }
      if r(5) == 1 then keep[#keep + 1] = e end
      if i % 500 == 0 then collectgarbage() end
    end
    shuffle(keep, r)
    for i = #keep, 1, -1 do
      keep[i] = nil
      if i % 300 == 0 then collectgarbage() end
    end
    collectgarbage()
  end)

  it("keeps a condition read from a step after the step is gone", function()
    local c
    do
      local s = ts.RunCommandLine { Name = "a", Condition = ts.variable("A", "exists") }
      c = s.Condition
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal("A exists", tostring(c))
  end)

  -- ts.memory() counts what the core holds. A loop that reads documents one after another
  -- keeps one of them under the generational collector (tsq and lua5.4 run in that mode):
  -- the one it dropped is collected young, before the next is read. Under the incremental
  -- collector the full collections keep it to a few.
  local function memory_loop(mode)
    local script = [[
      local ts = require "tasksequence"
      collectgarbage(arg[1])
      local parts = { '<sequence version="3.10">' }
      for i = 1, 1500 do
        parts[#parts + 1] = ('<step type="SMS_TaskSequence_RunCommandLineAction" name="Run %d"><action>x%d.exe</action>'
          .. '<defaultVarList><variable name="CommandLine" property="CommandLine">x%d.exe</variable></defaultVarList></step>'):format(i, i, i)
      end
      parts[#parts + 1] = "</sequence>"
      local text = table.concat(parts)
      local one, most = nil, 0
      for _ = 1, 30 do
        local seq = ts.parse(text)
        for step in seq:steps() do local _ = step.Name end
        local m = ts.memory()
        one = one or m
        if m > most then most = m end
      end
      io.write(one, " ", most)
    ]]
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "w"))
    f:write(script)
    f:close()
    local p = assert(io.popen("lua5.4 " .. tmp .. " " .. mode))
    local out = p:read("a")
    p:close()
    os.remove(tmp)
    local one, most = out:match("^(%d+) (%d+)$")
    assert.is_truthy(one, out)
    return tonumber(one), tonumber(most)
  end

  it("keeps one document of a loop that reads them one after another (generational)", function()
    local one, most = memory_loop("generational")
    assert.is_true(one > 1000000, "one document holds " .. one .. " bytes")
    assert.is_true(most < one * 1.5, ("most %d bytes, one document %d"):format(most, one))
  end)

  it("keeps a few documents of such a loop under the incremental collector", function()
    local one, most = memory_loop("incremental")
    assert.is_true(most < one * 4, ("most %d bytes, one document %d"):format(most, one))
  end)

  it("does not collect while the script has stopped the collector", function()
    local parts = { '<sequence version="3.10">' }
    for i = 1, 2000 do parts[#parts + 1] = ('<step type="SMS_TaskSequence_RebootAction" name="R%d"/>'):format(i) end
    parts[#parts + 1] = "</sequence>"
    local text = table.concat(parts)
    collectgarbage()
    collectgarbage("stop")
    local finalized = 0
    setmetatable({}, { __gc = function() finalized = finalized + 1 end }) -- garbage with a finalizer
    local sizes = {}
    for i = 1, 6 do
      local seq = ts.parse(text) -- luacheck: ignore
      sizes[i] = ts.memory()
    end
    local running, while_stopped = collectgarbage("isrunning"), finalized
    collectgarbage("restart")
    collectgarbage()
    assert.is_false(running)
    assert.are.equal(0, while_stopped) -- no collection ran inside ts.parse
    assert.are.equal(1, finalized)
    for i = 2, 6 do assert.is_true(sizes[i] > sizes[i - 1], "nothing was freed while stopped") end
  end)

  it("counts the memory the core holds in ts.memory(), which it reuses once freed", function()
    local function build()
      local g = ts.group "g"
      for i = 1, 5000 do g:add(ts.RunCommandLine { Name = "a" .. i, CommandLine = "x" .. i }) end
      return g
    end
    collectgarbage()
    collectgarbage()
    local before = ts.memory()
    local g = build()
    local built = ts.memory()
    assert.is_true(built > before + 1000000, ("%d bytes before, %d after 5,000 steps"):format(before, built))
    g = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    g = build() -- in the blocks the first group left
    assert.is_true(ts.memory() < built + 100000, ("%d bytes the first time, %d the second"):format(built, ts.memory()))
    assert.are.equal(5000, #g)
  end)

  it("lets the state close with objects alive in any order", function()
    local script = [[
      local ts = require "tasksequence"
      local keep = {}
      for i = 1, 500 do
        local g = ts.group("g" .. i)
        keep[#keep + 1] = g:add(ts.RunCommandLine "a")
        if i % 2 == 0 then keep[#keep + 1] = g end
        keep[#keep + 1] = ts.condition { ts.variable("A", "exists") }
        keep[#keep + 1] = ts.environment { variables = { A = i }, wmi = { q = 1 } }
      end
      _G.keep = keep
      os.exit(0, true)
    ]]
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "w"))
    f:write(script)
    f:close()
    local ok, how, code = os.execute("lua5.4 " .. tmp)
    os.remove(tmp)
    assert.are.same({ true, "exit", 0 }, { ok, how, code })
  end)
end)
