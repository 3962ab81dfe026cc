-- The find vocabulary and the tree edits (tasksequence.query, step methods through tasksequence).
local ts = require "tasksequence"
local H = require "helpers"
local query = require "tasksequence.query"

local function names(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = s.Name end
  return out
end

local function build()
  return ts.sequence {
    ts.group { Name = "Install",
      ts.group { Name = "Drivers",
        ts.ApplyDriverPackage { Name = "Dell 7420", DriverPackageID = "PS100012",
          Condition = ts.condition { ts.variable("Model", "like", "%7420%") } },
        ts.ApplyDriverPackage { Name = "HP 840", DriverPackageID = "PS100013", Enabled = false },
      },
      ts.RunCommandLine { Name = "Apply image", CommandLine = "apply.cmd" },
    },
    ts.RunCommandLine { Name = "Cleanup", CommandLine = "cleanup.cmd",
      Condition = ts.condition { ts.variable("OSDDoCleanup", "equals", "true") } },
  }
end

local function top(seq) return names(query.children(seq)) end

describe("seq:find", function()
  local seq
  before_each(function() seq = build() end)

  it("selects by short or full class name", function()
    assert.same({ "Dell 7420", "HP 840" }, names(seq:find { type = "ApplyDriverPackage" }))
    assert.same({ "Apply image", "Cleanup" }, names(seq:find { type = "SMS_TaskSequence_RunCommandLineAction" }))
    assert.same({ "Install", "Drivers" }, names(seq:find { type = "group" }))
  end)

  it("selects by name and by name pattern", function()
    assert.same({ "Cleanup" }, names(seq:find { name = "Cleanup" }))
    assert.same({ "Dell 7420", "HP 840" }, names(seq:find { name_like = "^%a+ %d+$" }))
  end)

  it("selects by any PascalCase property", function()
    assert.same({ "Dell 7420" }, names(seq:find { DriverPackageID = "PS100012" }))
  end)

  it("selects by enabled and has_condition", function()
    assert.same({ "HP 840" }, names(seq:find { enabled = false }))
    assert.same({ "Dell 7420", "Cleanup" }, names(seq:find { has_condition = true }))
  end)

  it("selects by a variable the condition mentions", function()
    assert.same({ "Cleanup" }, names(seq:find { mentions = "osddocleanup" }))
    assert.same({}, names(seq:find { mentions = "OSDDo" }))
  end)

  it("selects by depth, inside and path", function()
    assert.same({ "Install", "Cleanup" }, names(seq:find { depth = 1 }))
    assert.same({ "Dell 7420", "HP 840" }, names(seq:find { inside = "Drivers" }))
    assert.same({ "Drivers", "Dell 7420", "HP 840", "Apply image" }, names(seq:find { inside = "Install" }))
    assert.same({ "Dell 7420" }, names(seq:find { path = "Install/Drivers/Dell 7420" }))
    assert.same({ "HP 840" }, names(seq:find { path = "1.1.2" }))
  end)

  it("selects inside a group given by path or index path", function()
    assert.same({ "Dell 7420", "HP 840" }, names(seq:find { inside = "Install/Drivers" }))
    assert.same({ "Dell 7420", "HP 840" }, names(seq:find { inside = "1.1" }))
    assert.same({}, names(seq:find { inside = "Drivers/Install" }))
  end)

  it("takes a string as a name or a path", function()
    assert.same({ "HP 840" }, names(seq:find "HP 840"))
    assert.same({ "HP 840" }, names(seq:find "Install/Drivers/HP 840"))
    assert.same({ "Apply image" }, names(seq:find "1.2"))
  end)

  it("searches only inside the group it is called on", function()
    local drivers = seq:find("Install/Drivers")[1]
    assert.same({ "HP 840" }, names(drivers:find { enabled = false }))
    assert.same({}, names(drivers:find { name = "Cleanup" }))
  end)

  it("gives each step a name path and an index path", function()
    local s = seq:find { name = "HP 840" }[1]
    assert.equals("Install/Drivers/HP 840", s.path)
    assert.equals("1.1.2", s.index_path)
    assert.equals("Install/Drivers/HP 840", query.path(s))
    assert.equals("1.1.2", query.index_path(s))
  end)

  it("combines keys and takes a predicate", function()
    assert.same({ "Dell 7420" }, names(seq:find { type = "ApplyDriverPackage", enabled = true }))
    assert.same({ "Cleanup" }, names(seq:find(function(s) return s.Name:sub(1, 1) == "C" end)))
  end)

  it("rejects an unknown selector key with the list of known ones", function()
    assert.has_error(function() seq:find { colour = "red" } end)
    local ok, err = pcall(seq.find, seq, { colour = "red" })
    assert.is_false(ok)
    assert.matches("bad selector key 'colour'", err)
  end)
end)

describe("step edits", function()
  local seq
  before_each(function() seq = build() end)

  it("insert_before and insert_after place a new step beside another", function()
    local apply = seq:find { name = "Apply image" }[1]
    apply:insert_before(ts.RunCommandLine { Name = "Before", CommandLine = "x" })
    apply:insert_after(ts.RunCommandLine { Name = "After", CommandLine = "x" })
    assert.same({ "Drivers", "Before", "Apply image", "After" }, names(query.children(seq:find { name = "Install" }[1])))
  end)

  it("move_up and move_down swap with a neighbour and stop at the ends", function()
    local cleanup = seq:find { name = "Cleanup" }[1]
    cleanup:move_up()
    assert.same({ "Cleanup", "Install" }, top(seq))
    cleanup:move_up()
    assert.same({ "Cleanup", "Install" }, top(seq))
    cleanup:move_down()
    assert.same({ "Install", "Cleanup" }, top(seq))
  end)

  it("move_to takes a group or its path", function()
    local cleanup = seq:find { name = "Cleanup" }[1]
    cleanup:move_to("Install/Drivers", 1)
    assert.same({ "Cleanup", "Dell 7420", "HP 840" }, names(query.children(seq:find { name = "Drivers" }[1])))
    assert.has_error(function() seq:find { name = "Install" }[1]:move_to("Install/Drivers") end)
  end)

  it("move_to puts the step at the index given, for a group and for its path alike", function()
    local install = seq:find { name = "Install" }[1]
    local drivers = seq:find { name = "Drivers" }[1]
    drivers:move_to(install, 2)
    assert.same({ "Apply image", "Drivers" }, names(query.children(install)))
    drivers:move_to("Install", 1)
    assert.same({ "Drivers", "Apply image" }, names(query.children(install)))
    drivers:move_to("1")
    assert.same({ "Apply image", "Drivers" }, names(query.children(install)))
    local cleanup = seq:find { name = "Cleanup" }[1]
    cleanup:move_to(seq, 1)
    assert.same({ "Cleanup", "Install" }, top(seq))
    cleanup:move_to(seq, 2)
    assert.same({ "Install", "Cleanup" }, top(seq))
    local ok, err = pcall(cleanup.move_to, cleanup, seq, 3)
    assert.is_false(ok)
    assert.matches("move_to: index 3 out of range 1%.%.2$", err)
  end)

  it("replace puts a new step at the old one's place", function()
    local old = seq:find { name = "Apply image" }[1]
    old:replace(ts.RunCommandLine { Name = "Apply WIM", CommandLine = "dism" })
    assert.is_nil(old.parent)
    assert.same({ "Drivers", "Apply WIM" }, names(query.children(seq:find { name = "Install" }[1])))
  end)

  it("ts.wrap puts steps in a new group and unwrap takes them out", function()
    local install = seq:find { name = "Install" }[1]
    local kids = query.children(install)
    local g = ts.wrap({ kids[1], kids[2] }, "Core")
    assert.same({ "Core" }, names(query.children(install)))
    assert.same({ "Drivers", "Apply image" }, names(query.children(g)))
    g:unwrap()
    assert.same({ "Drivers", "Apply image" }, names(query.children(install)))
  end)

  it("copies steps between sequences with clone and add", function()
    local other = ts.sequence {}
    other:add(seq:find { name = "Drivers" }[1]:clone())
    assert.same({ "Drivers", "Dell 7420", "HP 840" }, names(other:find {}))
    assert.equals(3, #seq:find { inside = "Install" } - 1)
  end)

  it("rename maps every name through a function", function()
    local n = seq:rename(function(name) if name:find("^HP") then return name:gsub("^HP", "HP EliteBook") end end)
    assert.equals(1, n)
    assert.equals(1, #seq:find { name = "HP EliteBook 840" })
  end)

  it("set_all sets one property on every match", function()
    assert.equals(2, seq:set_all({ type = "ApplyDriverPackage" }, "ContinueOnError", true))
    for _, s in ipairs(seq:find { type = "ApplyDriverPackage" }) do assert.is_true(s.ContinueOnError) end
  end)

  it("move_to keeps the moved step's bytes, also after the modules are loaded again", function()
    local step = [[<step type='SMS_TaskSequence_RebootAction'   name="R" description="" ><action>smsboot.exe /target:HD</action></step>]]
    local xml = '<sequence version="3.10"><group name="A">' .. step .. '</group><group name="B"></group></sequence>'
    for round = 1, 2 do
      local t = ts
      if round == 2 then
        for _, m in ipairs { "tasksequence", "tasksequence.query" } do package.loaded[m] = nil end
        t = require "tasksequence"
      end
      local doc = t.parse(xml)
      doc:find { name = "R" }[1]:move_to("B")
      local out = doc:to_xml()
      assert.truthy(out:find('<group name="B">' .. step, 1, true), out)
      assert.equals(0, #doc:find { name = "A" }[1])
    end
  end)

  it("leaves the untouched parts of a loaded document byte for byte", function()
    local xml = build():to_xml()
    local doc = ts.parse(xml)
    doc:find { name = "HP 840" }[1].Name = "HP 850"
    assert.equals((xml:gsub('name="HP 840"', 'name="HP 850"')), doc:to_xml())
  end)
end)

H.describe_corpus("edits on the real corpus", function()

  -- edit, write, read back, undo: the bytes come back when the edit touched nothing else
  local EDITS = {
    { "insert_after and remove", function(seq, s)
        s:insert_after(ts.RunCommandLine { Name = "Planted", CommandLine = "x" })
        return true
      end, function(seq) seq:find("Planted")[1]:remove() end },
    { "move_down and move_up", function(seq, s)
        if s.index == #query.children(s.parent) then return nil end
        s:move_down()
        return s.index_path
      end, function(seq, p) seq:find(p)[1]:move_up() end },
    { "rename and rename back", function(seq, s)
        local old = s.Name
        seq:rename(function(name) if name == old then return name .. " (x)" end end)
        return old
      end, function(seq, old) seq:rename(function(name) if name == old .. " (x)" then return old end end) end },
  }

  -- The spans of a and b between their common prefix and common suffix.
  local function changed_spans(a, b)
    local i = 1
    while i <= #a and a:byte(i) == b:byte(i) do i = i + 1 end
    local ja, jb = #a, #b
    while ja >= i and jb >= i and a:byte(ja) == b:byte(jb) do ja, jb = ja - 1, jb - 1 end
    return a:sub(i, ja), b:sub(i, jb)
  end

  for _, path in ipairs(H.corpus_files()) do
    local name = path:match("[^/]+$")
    it("edits " .. name .. " without touching anything else", function()
      local orig = H.read(path)
      for _, e in ipairs(EDITS) do
        local seq = assert(ts.parse(orig, name))
        local target = seq:find { kind = "action" }[2]
        if target then
          local ctx = e[2](seq, target)
          if ctx ~= nil then
            local mid = seq:to_xml()
            assert.are_not.equal(orig, mid, e[1])
            local back = assert(ts.parse(mid, name))
            e[3](back, ctx)
            assert.equals(orig, back:to_xml(), e[1])
          end
        end
      end
      -- set_all of a flag: the bytes change only inside that step's start tag
      local seq = assert(ts.parse(orig, name))
      local target = seq:find { kind = "action" }[2]
      if target then
        assert.equals(1, seq:set_all({ path = target.path, type = target.type }, "ContinueOnError", not target.ContinueOnError))
        local was, now = changed_spans(orig, seq:to_xml())
        assert.is_true(#was + #now > 0)
        assert.is_nil(was:find("[<>\n]"), was)
        assert.is_nil(now:find("[<>\n]"), now)
      end
    end)
  end
end)
