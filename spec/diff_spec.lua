-- Structural diff: exactly the planted changes, by step path.
local ts = require "tasksequence"
local H = require "helpers"
local diff = require "tasksequence.diff"

local function build()
  return ts.sequence {
    ts.group { Name = "Prepare",
      ts.RunCommandLine { Name = "Gather", CommandLine = "gather.cmd" },
      ts.RunCommandLine { Name = "Wipe", CommandLine = "wipe.cmd" },
    },
    ts.group { Name = "Install",
      ts.RunCommandLine { Name = "Apply", CommandLine = "apply.cmd" },
      ts.RunCommandLine { Name = "Drivers", CommandLine = "drivers.cmd" },
      ts.RunCommandLine { Name = "Apps", CommandLine = "apps.cmd" },
    },
  }
end

local function kinds(changes)
  local out = {}
  for _, c in ipairs(changes) do out[#out + 1] = c.change .. " " .. c.path .. (c.property and (" " .. c.property) or "") end
  table.sort(out)
  return out
end

local function find(seq, name) return seq:find { name = name }[1] end

describe("diff.compare", function()
  it("finds nothing between a sequence and its copy", function()
    local a = build()
    assert.same({}, diff.compare(a, ts.parse(a:to_xml())))
  end)

  it("finds an added and a removed step", function()
    local a, b = build(), build()
    find(b, "Wipe"):remove()
    find(b, "Install"):add(ts.RunCommandLine { Name = "Activate", CommandLine = "slmgr /ato" })
    assert.same({ "added Install/Activate", "removed Prepare/Wipe" }, kinds(diff.compare(a, b)))
  end)

  it("finds a renamed step", function()
    local a, b = build(), build()
    find(b, "Drivers").Name = "Drivers (Dell)"
    local c = diff.compare(a, b)
    assert.same({ "renamed Install/Drivers (Dell)" }, kinds(c))
    assert.equals("Install/Drivers", c[1].from)
  end)

  it("finds a step moved to another group", function()
    local a, b = build(), build()
    local s = find(b, "Gather")
    s:remove()
    find(b, "Install"):add(s, 1)
    local c = diff.compare(a, b)
    assert.same({ "moved Install/Gather" }, kinds(c))
    assert.equals("Prepare/Gather", c[1].from)
  end)

  it("finds changed properties, conditions and flags", function()
    local a, b = build(), build()
    find(b, "Apply").CommandLine = "apply2.cmd"
    find(b, "Apps").Condition = ts.condition { ts.variable("SkipApps", "notEquals", "true") }
    find(b, "Wipe").Enabled = false
    local c = diff.compare(a, b)
    assert.same({ "changed Install/Apply CommandLine", "changed Install/Apply command", "changed Install/Apps Condition",
      "changed Prepare/Wipe Enabled" }, kinds(c))
    for _, x in ipairs(c) do
      if x.property == "CommandLine" then
        assert.equals("apply.cmd", x.old)
        assert.equals("apply2.cmd", x.new)
      end
    end
  end)

  it("calls a step moved when it changes places with a sibling", function()
    local a, b = build(), build()
    find(b, "Apps"):move_to(find(b, "Install"), 1)
    assert.same({ "moved Install/Apps" }, kinds(diff.compare(a, b)))
  end)

  it("calls a step replaced by a different one of its class removed and added, not renamed", function()
    local a, b = build(), build()
    local old = find(b, "Drivers")
    local i = old.index
    local parent = old.parent
    old:remove()
    parent:add(ts.RunCommandLine { Name = "Firmware", CommandLine = "firmware.cmd" }, i)
    assert.same({ "added Install/Firmware", "removed Install/Drivers" }, kinds(diff.compare(a, b)))
  end)

  it("calls a step renamed when its own properties change little", function()
    local a, b = build(), build()
    local s = find(b, "Drivers")
    s.Name = "Drivers (all models)"
    s.Description = "every model"
    assert.same({ "changed Install/Drivers (all models) Description", "renamed Install/Drivers (all models)" },
      kinds(diff.compare(a, b)))
  end)

  it("does not call a step moved when another is inserted before it", function()
    local a, b = build(), build()
    find(b, "Install"):add(ts.RunCommandLine { Name = "First", CommandLine = "x" }, 1)
    assert.same({ "added Install/First" }, kinds(diff.compare(a, b)))
  end)
end)

describe("diff.format", function()
  it("writes one line per change", function()
    local a, b = build(), build()
    find(b, "Apply").CommandLine = "apply2.cmd"
    find(b, "Wipe"):remove()
    local text = diff.format(diff.compare(a, b))
    assert.matches('~ changed Install/Apply: CommandLine "apply%.cmd" %-> "apply2%.cmd"\n', text)
    assert.matches("%- removed Prepare/Wipe %[RunCommandLine%]\n", text)
  end)

  it("is empty for no changes", function()
    assert.equals("", diff.format({}))
  end)
end)

H.describe_corpus("diff over the real corpus", function(dir)
  local p = io.popen("ls -1 '" .. dir .. "'")
  for name in p:lines() do
    if name:match("%.xml$") then
      it("finds exactly the planted changes in " .. name, function()
        local a = assert(ts.load(dir .. "/" .. name))
        assert.same({}, diff.compare(a, assert(ts.load(dir .. "/" .. name))))
        local b = assert(ts.load(dir .. "/" .. name))
        local actions = b:find { kind = "action" }
        if #actions < 3 then return end
        local first, last = actions[1], actions[#actions]
        first.Name = first.Name .. " (renamed)"
        first.Description = "planted"
        last:remove()
        local c = kinds(diff.compare(a, b))
        local has = {}
        for _, k in ipairs(c) do has[k:match("^(%a+)")] = (has[k:match("^(%a+)")] or 0) + 1 end
        assert.equals(1, has.renamed, table.concat(c, "\n"))
        assert.equals(1, has.removed, table.concat(c, "\n"))
        assert.equals(1, has.changed, table.concat(c, "\n"))
        assert.is_nil(has.added)
        assert.is_nil(has.moved)
      end)
    end
  end
  p:close()
end)

H.describe_corpus("tsq diff over copies of the real corpus", function(corpus)
  local tmp
  setup(function() tmp = H.tmpdir() end)
  teardown(function() H.rm_rf(tmp) end)

  local function q(v) return (string.format("%q", v):gsub("\\\n", "\\n")) end

  -- Actions whose path and whose name+class are unique, so that each planted change has
  -- one right reading.
  local function candidates(seq)
    local paths, names, list = {}, {}, {}
    for s in seq:steps() do
      paths[s.path] = (paths[s.path] or 0) + 1
      local k = s.Name .. "\0" .. s.type
      names[k] = (names[k] or 0) + 1
    end
    for s in seq:steps() do
      if s.kind == "action" and paths[s.path] == 1 and names[s.Name .. "\0" .. s.type] == 1 then list[#list + 1] = s end
    end
    return list
  end

  local function lines(text)
    local out = {}
    for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
    table.sort(out)
    return out
  end

  for _, path in ipairs(H.corpus_files()) do
    local name = path:match("[^/]+$")
    it("finds exactly the changes planted in " .. name, function()
      local out, _, rc = H.tsq("diff", path, path)
      assert.equals(0, rc)
      assert.equals("", out)
      local seq = assert(ts.load(path))
      local c = candidates(seq)
      if #c < 5 then return end -- too few distinct steps to plant five changes
      local want = {}
      local renamed, described, removed = c[1], c[2], c[#c]
      local conditioned, moved
      for k = 3, #c - 1 do
        if not conditioned and c[k].Condition == nil then conditioned = c[k]
        elseif not moved and c[k].depth >= 2 then moved = c[k] end
      end

      local from = renamed.path
      renamed.Name = renamed.Name .. " (planted)"
      want[#want + 1] = string.format("= renamed %s -> %s", from, renamed.path)

      want[#want + 1] = string.format("~ changed %s: Description %s -> %s", described.path, q(described.Description), q("planted"))
      described.Description = "planted"

      if conditioned then
        local cond = ts.condition { ts.variable("Planted", "equals", "1") }
        conditioned.Condition = cond
        want[#want + 1] = string.format("~ changed %s: Condition nil -> %s", conditioned.path, q(tostring(cond)))
      end

      want[#want + 1] = string.format("- removed %s [%s]", removed.path,
        removed.type == "" and "step" or (removed.type:gsub("^SMS_TaskSequence_(.-)Action$", "%1")))
      removed:remove()

      if moved then
        local old_path, old_index = moved.path, moved.index_path
        moved:remove()
        seq:add(moved)
        want[#want + 1] = string.format("> moved %s (%s) -> %s (%s)", old_path, old_index, moved.path, moved.index_path)
      end

      local added = seq:add(ts.RunCommandLine { Name = "Planted step", CommandLine = "cmd /c exit 0" })
      want[#want + 1] = string.format("+ added %s [RunCommandLine]", added.path)

      local copy = tmp .. "/" .. name
      assert(seq:save(copy))
      local text, err, rc2 = H.tsq("diff", path, copy)
      assert.equals(1, rc2, err)
      table.sort(want)
      assert.same(want, lines(text))
      local js = H.tsq("diff", path, copy, "--format", "json")
      local kinds = {}
      for l in js:gmatch("[^\n]+") do
        local k = assert(l:match('^{.*"change":"(%a+)"'), l)
        kinds[#kinds + 1] = k
      end
      assert.equals(#want, #kinds)
    end)
  end
end)
