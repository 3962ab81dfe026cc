local ts = require "tasksequence"
local H = require "helpers"

local function names(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = s.Name end
  return out
end

describe("common properties", function()
  it("read and write Name and Description", function()
    local s = ts.RunCommandLine "a"
    s.Name, s.Description = "b", "some words"
    assert.are.equal("b", s.Name)
    assert.are.equal("some words", s.Description)
    s.Description = nil
    assert.are.equal("", s.Description)
  end)

  it("read and write Enabled and ContinueOnError as booleans", function()
    local s = ts.RunCommandLine "a"
    assert.is_true(s.Enabled)
    assert.is_false(s.ContinueOnError)
    s.Enabled, s.ContinueOnError = false, true
    assert.is_false(s.Enabled)
    assert.is_true(s.ContinueOnError)
    local seq = ts.sequence "x" { s }
    assert.truthy(seq:to_xml():find('disable="true" continueOnError="true"', 1, true))
  end)

  it("reject values of the wrong type", function()
    local s = ts.RunCommandLine "a"
    assert.are.equal("bad value for 'Enabled' (boolean expected, got string)", H.errmsg(function() s.Enabled = "no" end))
    assert.are.equal("bad value for 'Name' (string expected, got table)", H.errmsg(function() s.Name = {} end))
  end)
end)

describe("action properties", function()
  it("are typed", function()
    local s = ts.RunCommandLine { Name = "a", CommandLine = "cmd", Timeout = 60, DisableWow64Redirection = true }
    assert.are.equal("cmd", s.CommandLine)
    assert.are.equal(60, s.Timeout)
    assert.are.equal("integer", math.type(s.Timeout))
    assert.is_true(s.DisableWow64Redirection)
    assert.are.equal("WinPEandFullOS", s.SupportedEnvironment)
  end)

  it("read nil when a known property is not set", function()
    assert.is_nil(ts.RunCommandLine("a").PackageID)
  end)

  it("are removed by assigning nil", function()
    local s = ts.RunCommandLine { Name = "a", PackageID = "PS100001" }
    assert.are.equal("PS100001", s.PackageID)
    s.PackageID = nil
    assert.is_nil(s.PackageID)
  end)

  it("keep the command text consistent", function()
    local s = ts.RunCommandLine { Name = "a", CommandLine = "cmd /c echo hi" }
    assert.are.equal("smsswd.exe /run: cmd /c echo hi", s.command)
    s.PackageID = "PS100001"
    assert.are.equal("smsswd.exe /run:PS100001 cmd /c echo hi", s.command)
  end)

  it("let the command text be set freely", function()
    local s = ts.action("BDD_Gather", { Name = "g" })
    s.command = 'cscript.exe "%SCRIPTROOT%\\ZTIGather.wsf"'
    assert.are.equal('cscript.exe "%SCRIPTROOT%\\ZTIGather.wsf"', s.command)
    assert.is_nil(ts.group("g").command)
  end)

  it("raise on a property the class does not have, listing the valid ones", function()
    local msg = H.errmsg(function() return ts.RunCommandLine("a").Foo end)
    assert.truthy(msg:find('^RunCommandLine "a": '))
    assert.truthy(msg:find("Foo", 1, true) and msg:find("CommandLine", 1, true))
  end)

  it("check allowed values", function()
    local msg = H.errmsg(function() ts.RunCommandLine("a").SupportedEnvironment = "Nope" end)
    assert.truthy(msg:find("WinPE", 1, true) and msg:find("Nope", 1, true), msg)
  end)

  it("reject non-integer numbers for integer properties", function()
    assert.are.equal("bad value for 'Timeout' (integer expected, got non-integer number)",
      H.errmsg(function() ts.RunCommandLine("a").Timeout = 1.5 end))
  end)

  it("take string lists as arrays", function()
    local s = ts.CaptureUserState { Name = "c", ConfigFiles = { "miguser.xml", "migsys.xml" } }
    assert.are.same({ "miguser.xml", "migsys.xml" }, s.ConfigFiles)
  end)

  it("take object arrays as arrays of tables", function()
    local s = ts.InstallApplication { Name = "apps", AppInfo = { { Name = "App1", DisplayName = "One" }, { Name = "App2" } } }
    local apps = s.AppInfo
    assert.are.equal(2, #apps)
    assert.are.equal("App1", apps[1].Name)
    assert.are.equal("One", apps[1].DisplayName)
    assert.are.equal("App2", apps[2].Name)
  end)

  it("are all listed by properties(), typed", function()
    local p = ts.RunCommandLine { Name = "a", CommandLine = "cmd", Timeout = 5 }:properties()
    assert.are.equal("a", p.Name)
    assert.are.equal("cmd", p.CommandLine)
    assert.are.equal(5, p.Timeout)
    assert.is_false(p.DisableWow64Redirection)
    assert.is_true(p.Enabled)
    assert.is_nil(p.Condition)
  end)

  it("of uncatalogued classes are free strings", function()
    local s = ts.action("BDD_Gather", { Name = "g" })
    assert.is_nil(s.GatherLocalOnly)
    s.GatherLocalOnly = "true"
    assert.are.equal("true", s.GatherLocalOnly)
  end)
end)

describe("the Condition property", function()
  it("is nil without a condition", function()
    assert.is_nil(ts.RunCommandLine("a").Condition)
  end)

  it("stores a copy", function()
    local c = ts.condition { ts.variable("A", "equals", "1") }
    local s = ts.RunCommandLine { Name = "a", Condition = c }
    c:add(ts.variable("B", "exists"))
    assert.are.equal('A equals "1"', tostring(s.Condition))
    assert.are_not.equal(rawequal(s.Condition, s.Condition), true) -- each read is a new value
    assert.are.equal(s.Condition, s.Condition)                     -- that compares equal
  end)

  it("accepts a bare operand or a text", function()
    local s = ts.RunCommandLine { Name = "a", Condition = ts.variable("A", "exists") }
    assert.are.equal("condition", s.Condition.kind)
    s.Condition = 'B equals "2"'
    assert.are.equal('B equals "2"', tostring(s.Condition))
  end)

  it("is removed by assigning nil", function()
    local s = ts.RunCommandLine { Name = "a", Condition = ts.variable("A", "exists") }
    s.Condition = nil
    assert.is_nil(s.Condition)
  end)

  it("rejects other values", function()
    assert.are.equal("bad value for 'Condition' (condition expected, got number)",
      H.errmsg(function() ts.RunCommandLine("a").Condition = 5 end))
  end)
end)

describe("tree edits", function()
  it("add appends and returns the step", function()
    local g = ts.group "g"
    local a = ts.RunCommandLine "a"
    assert.are.equal(a, g:add(a))
    assert.are.equal(g, a.parent)
    assert.are.equal(1, #g)
  end)

  it("add inserts at a 1-based index", function()
    local g = ts.group "g" { ts.RunCommandLine "a", ts.RunCommandLine "c" }
    g:add(ts.RunCommandLine "b", 2)
    g:add(ts.RunCommandLine "first", 1)
    g:add(ts.RunCommandLine "last", 5)
    assert.are.same({ "first", "a", "b", "c", "last" }, names { g[1], g[2], g[3], g[4], g[5] })
  end)

  it("insert works like table.insert", function()
    local g = ts.group "g" { ts.RunCommandLine "b" }
    g:insert(1, ts.RunCommandLine "a")
    g:insert(ts.RunCommandLine "c")
    assert.are.same({ "a", "b", "c" }, names { g[1], g[2], g[3] })
  end)

  it("reject an index out of range", function()
    local g = ts.group "g"
    assert.are.equal("bad argument #2 to 'add' (index out of range (1 to 1))",
      H.errmsg(function() g:add(ts.RunCommandLine "a", 3) end))
  end)

  it("reject a step that already has a parent", function()
    local a = ts.RunCommandLine "a"
    local _ = ts.group "g" { a }
    assert.are.equal("bad argument #1 to 'add' (the step already has a parent (remove it first))",
      H.errmsg(function() ts.group("h"):add(a) end))
  end)

  it("reject a group added into its own descendant", function()
    local inner = ts.group "inner"
    local outer = ts.group "outer" { ts.group "middle" { inner } }
    assert.are.equal("bad argument #1 to 'add' (a group can not be added to itself or to one of its descendants)",
      H.errmsg(function() inner:add(outer) end))
    assert.are.equal("bad argument #1 to 'add' (a group can not be added to itself or to one of its descendants)",
      H.errmsg(function() outer:add(outer) end))
  end)

  it("reject adding to an action", function()
    assert.are.equal("calling 'add' on bad self (steps can only be added to a group or a sequence)",
      H.errmsg(function() ts.RunCommandLine("a"):add(ts.group "g") end))
  end)

  it("reject adding a sequence", function()
    assert.truthy(H.errmsg(function() ts.group("g"):add(ts.sequence()) end):find("^bad argument #1 to 'add'"))
  end)

  it("remove detaches and returns the step, still usable", function()
    local g = ts.group "g" { ts.RunCommandLine "a", ts.RunCommandLine "b" }
    local a = g[1]
    assert.are.equal(a, a:remove())
    assert.is_nil(a.parent)
    assert.are.equal(1, #g)
    a.Name = "renamed"
    ts.group("h"):add(a)
    assert.are.equal("renamed", a.Name)
  end)

  it("remove on a detached step does nothing", function()
    local a = ts.RunCommandLine "a"
    assert.are.equal(a, a:remove())
  end)

  it("clone makes a detached deep copy", function()
    local g = ts.group "g" { ts.RunCommandLine "a" { CommandLine = "x" } }
    local seq = ts.sequence "s" { g }
    local c = g:clone()
    assert.is_nil(c.parent)
    assert.are_not.equal(g, c)
    assert.are.equal("x", c[1].CommandLine)
    c[1].CommandLine = "y"
    assert.are.equal("x", g[1].CommandLine)
    seq:add(c)
    assert.are.equal(2, #seq)
  end)

  it("move_to moves a step between groups", function()
    local a, b = ts.group "a" { ts.RunCommandLine "x" }, ts.group "b"
    local _ = ts.sequence "s" { a, b }
    local x = a[1]
    x:move_to(b)
    assert.are.equal(b, x.parent)
    assert.are.equal(0, #a)
  end)

  it("give paths by name and by index", function()
    local seq = ts.sequence "s" { ts.group "Install" { ts.RunCommandLine "one", ts.group "Drivers" { ts.RunCommandLine "Dell" } } }
    local dell = seq[1][2][1]
    assert.are.equal("Install/Drivers/Dell", dell.path)
    assert.are.equal("1.2.1", dell.index_path)
    assert.are.equal(1, dell.index)
    assert.are.equal(3, dell.depth)
    assert.is_nil(seq.index)
  end)
end)

describe("iteration and search", function()
  local seq
  before_each(function()
    seq = ts.sequence "s" {
      ts.group "A" { ts.RunCommandLine "a1", ts.group "B" { ts.SetVariable "b1" }, ts.RunCommandLine "a2" },
      ts.RunCommandLine "top",
    }
  end)

  it("steps() walks depth first in document order", function()
    local out = {}
    for s in seq:steps() do out[#out + 1] = s.Name end
    assert.are.same({ "A", "a1", "B", "b1", "a2", "top" }, out)
  end)

  it("group:steps() walks inside the group only", function()
    local out = {}
    for s in seq[1]:steps() do out[#out + 1] = s.Name end
    assert.are.same({ "a1", "B", "b1", "a2" }, out)
  end)

  it("children() gives the direct child steps", function()
    local out = {}
    for s in seq[1]:children() do out[#out + 1] = s.Name end
    assert.are.same({ "a1", "B", "a2" }, out)
  end)

  it("find takes a selector by class name, short or full", function()
    assert.are.same({ "a1", "a2", "top" }, names(seq:find { type = "RunCommandLine" }))
    assert.are.same({ "b1" }, names(seq:find { type = "SMS_TaskSequence_SetVariableAction" }))
  end)

  it("find takes a predicate", function()
    assert.are.same({ "a2" }, names(seq:find(function(s) return s.Name == "a2" end)))
  end)

  it("find on a group searches inside it", function()
    assert.are.same({ "a1", "a2" }, names(seq[1]:find { type = "RunCommandLine" }))
  end)

  it("child(i) and # give the direct children", function()
    assert.are.equal(2, #seq)
    assert.are.equal("top", seq:child(2).Name)
    assert.is_nil(seq:child(3))
    assert.are.equal(3, seq[1].count)
  end)
end)

describe("validation", function()
  it("returns problems with step, property, message and severity", function()
    local seq = ts.sequence "s" { ts.RunCommandLine "a" }
    local problems = seq:validate()
    assert.is_true(#problems >= 1)
    local p = problems[1]
    assert.are.equal(seq[1], p.step)
    assert.are.equal("CommandLine", p.property)
    assert.are.equal("string", type(p.message))
    assert.are.equal("error", p.severity)
  end)

  it("returns nothing for a valid sequence", function()
    local seq = ts.sequence "s" { ts.RunCommandLine "a" { CommandLine = "cmd" } }
    local problems, errors = seq:validate()
    assert.are.same({}, problems)
    assert.are.equal(0, errors)
  end)
end)

describe("a group with many steps", function()
  -- adding to a group looks at its neighbours' layout only: a scan of every child here
  -- made this spec take minutes (100,000 adds took 270 s before, 1 s after)
  it("takes 30,000 steps in order and writes them all", function()
    local g = ts.group "many"
    for i = 1, 30000 do g:add(ts.RunCommandLine { Name = "s" .. i, CommandLine = "x" }) end
    assert.equals(30000, #g)
    assert.equals("s1", g[1].Name)
    assert.equals("s30000", g[30000].Name)
    local seq = ts.sequence "big" { g }
    local xml = seq:to_xml()
    local _, n = xml:gsub("<step ", "")
    assert.equals(30000, n)
    assert.truthy(xml:find('name="s29999".-name="s30000"'))
  end)
end)

describe("constructor tables", function()
  it("apply any number of properties, Name first, then in name order", function()
    local t = { Name = "Many" }
    for i = 1, 40 do t[("P%02d"):format(i)] = "v" .. i end
    local a = ts.action("BDD_Custom", t)
    assert.equals("Many", a.Name)
    for i = 1, 40 do assert.equals("v" .. i, a[("P%02d"):format(i)]) end
    local xml = ts.sequence "s" { a }:to_xml()
    local first, last = xml:find('property="P01"', 1, true), xml:find('property="P40"', 1, true)
    assert.truthy(first and last and first < last)
  end)
end)

describe("children by index", function()
  -- g[i] and g:child(i) walk on from the last answer; every kind of edit must be seen.
  -- A model (plain arrays of names) follows random edits of two groups; every few edits
  -- both groups are read in full, forwards and at random, and compared with it.
  it("follow random inserts, removals, moves, clones and collections", function()
    local seed = 20261130
    local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n + 1 end
    local g, h = ts.group "G", ts.group "H"
    local model = { [g] = {}, [h] = {} }
    local made = 0
    local function new()
      made = made + 1
      return ts.Reboot { Name = "S" .. made }
    end
    for _ = 1, 60 do local s = new(); g:add(s); table.insert(model[g], s.Name) end
    local function check(p)
      local m = model[p]
      assert.equals(#m, #p)
      for i = 1, #m do assert.equals(m[i], p[i].Name) end
      for _ = 1, 20 do
        local i = rand(#m + 1)
        if i <= #m then assert.equals(m[i], p:child(i).Name) else assert.is_nil(p[i]) end
      end
      for i = #m, 1, -1 do assert.equals(m[i], p[i].Name) end
      local i = 0
      for s in p:children() do i = i + 1; assert.equals(i, s.index) end
    end
    for round = 1, 400 do
      local p = rand(2) == 1 and g or h
      local q = p == g and h or g
      local m = model[p]
      local op = rand(7)
      local x, y -- two neighbours read before the edit: their indexes asked after it
      if #m > 0 then
        local r = rand(#m)
        x, y = p[r], p[r + 1] -- leaves the last answer somewhere
      end
      if op == 1 or #m == 0 then -- insert a new step
        local i = rand(#m + 1)
        local s = new()
        p:add(s, i)
        table.insert(m, i, s.Name)
        assert.equals(i, s.index)
      elseif op == 2 then -- remove one
        local i = rand(#m)
        p[i]:remove()
        table.remove(m, i)
      elseif op == 3 then -- move one to the other group
        local i = rand(#m)
        local s = p[i]
        local j = rand(#model[q] + 1)
        s:move_to(q, j)
        table.remove(m, i)
        table.insert(model[q], j, s.Name)
      elseif op == 4 then -- a clone at the end
        local c = p[rand(#m)]:clone()
        c.Name = "C" .. round
        p:add(c)
        table.insert(m, c.Name)
      elseif op == 5 then -- a condition: nodes that are not steps come and go
        p[rand(#m)].Condition = ts.condition { ts.variable("X", "equals", tostring(round)) }
      elseif op == 6 then -- a group read and dropped whole: a new one may take its memory
        local function read_and_drop() -- in a frame of its own: nothing of T stays on the stack
          local t = ts.group "T"
          for _ = 1, 5 do t:add(new()) end
          return t[4] ~= nil
        end
        assert.is_true(read_and_drop())
        collectgarbage()
        collectgarbage()
        local u = ts.group "U"
        assert.is_nil(u[4]) -- before any edit: nothing of T's last answer may be left
        assert.is_nil(u:child(5))
        u:add(new())
        assert.equals("S" .. made, u[1].Name)
      else -- a step dropped and collected: its memory may come back as another node
        local i = rand(#m)
        p[i]:remove()
        table.remove(m, i)
        collectgarbage()
        local s = new()
        p:add(s, 1)
        table.insert(m, 1, s.Name)
      end
      for _, s in ipairs { x or false, y or false } do -- nothing read since the edit
        if s and s.parent == p then
          local at
          for k, name in ipairs(m) do if name == s.Name then at = k end end
          assert.equals(at, s.index)
        end
      end
      if round % 10 == 0 then check(g); check(h) end
    end
    check(g); check(h)
  end)
end)
