-- Structural diff: exactly the planted changes, by step path.
local ts = require "tasksequence"
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

describe("diff over the real corpus", function()
  local SHARED = os.getenv("TSQ_SHARED")
  local dir = SHARED and SHARED .. "/corpus/real"
  local f = dir and io.open(dir .. "/MANIFEST.tsv")
  if not f then
    pending("TSQ_SHARED is not set: no corpus")
    return
  end
  f:close()
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
