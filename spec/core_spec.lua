local ts = require "tasksequence"
local core = require "tasksequence.core"
local H = require "helpers"

describe("the module", function()
  it("reports the library version", function()
    assert.are.equal(core.version, ts.version)
    assert.truthy(ts.version:match("^%d+%.%d+%.%d+"))
    assert.are.equal("tasksequence " .. ts.version, ts._VERSION)
  end)

  it("re-exports the C core", function()
    assert.are.equal(core.load, ts.load)
    assert.are.equal(core.parse, ts.parse)
    assert.are.equal(core.environment, ts.environment)
    assert.are.equal(core, ts.core)
  end)

  it("is the same table when required twice", function()
    assert.are.equal(ts, require "tasksequence")
  end)

  it("lists the catalogued action classes with their properties", function()
    local c = core.class("RunCommandLine")
    assert.are.equal("SMS_TaskSequence_RunCommandLineAction", c.name)
    assert.are.equal("Run Command Line", c.display)
    local names = {}
    for _, p in ipairs(c.properties) do names[p.name] = p end
    assert.are.equal("string", names.CommandLine.type)
    assert.are.equal("boolean", names.DisableWow64Redirection.type)
    assert.is_nil(core.class("NoSuchClass"))
  end)

  it("has a constructor for every catalogued action class", function()
    assert.is_true(#ts.action_classes >= 30)
    for _, c in ipairs(ts.action_classes) do
      local s = ts[c.short_name] { Name = "x" }
      assert.are.equal(c.name, s.type)
      assert.are.equal("action", s.kind)
    end
  end)

  it("raises on an unknown constructor name, suggesting the right one", function()
    assert.are.equal("unknown action class 'RunComandLine' (did you mean 'RunCommandLine'?)",
      H.errmsg(function() local _ = ts.RunComandLine end))
    assert.are.equal("unknown action class 'Zzzzzzzzzzzz'", H.errmsg(function() local _ = ts.Zzzzzzzzzzzz end))
  end)

  it("returns nil for unknown lowercase names", function()
    assert.is_nil(ts.no_such_function)
  end)

  it("tells its values apart", function()
    assert.is_true(ts.is_step(ts.group "g"))
    assert.is_false(ts.is_step({}))
    assert.is_true(ts.is_condition(ts.variable("A", "exists")))
    assert.is_true(ts.is_environment(ts.environment {}))
    assert.is_false(ts.is_environment(ts.group "g"))
  end)
end)

describe("constructors", function()
  it("build an action from a table", function()
    local s = ts.RunCommandLine { Name = "Say hello", CommandLine = "cmd /c echo hello" }
    assert.are.equal("Say hello", s.Name)
    assert.are.equal("cmd /c echo hello", s.CommandLine)
  end)

  it("build an action in the curried form", function()
    local s = ts.RunCommandLine "Say hello" { CommandLine = "cmd /c echo hello", Description = "d" }
    assert.are.equal("Say hello", s.Name)
    assert.are.equal("d", s.Description)
  end)

  it("build an action with just a name", function()
    local s = ts.SetVariable "Set Foo"
    assert.are.equal("Set Foo", s.Name)
    assert.are.equal("SMS_TaskSequence_SetVariableAction", s.type)
  end)

  it("accept full and short class names in ts.action", function()
    assert.are.equal("SMS_TaskSequence_RunCommandLineAction", ts.action("RunCommandLine", { Name = "a" }).type)
    assert.are.equal("SMS_TaskSequence_RunCommandLineAction",
      ts.action("SMS_TaskSequence_RunCommandLineAction", { Name = "a" }).type)
    assert.are.equal("b", ts.action "RunCommandLine" "b".Name)
  end)

  it("accept uncatalogued custom classes", function()
    local s = ts.action("BDD_Gather", { Name = "Gather local only" })
    assert.are.equal("BDD_Gather", s.type)
    assert.are.equal('BDD_Gather "Gather local only"', tostring(s))
  end)

  it("reject a misspelled class in ts.action", function()
    assert.are.equal("unknown action class 'RunComandLine' (did you mean 'RunCommandLine'?)",
      H.errmsg(function() local _ = ts.action("RunComandLine", { Name = "x" }) end))
  end)

  it("name the step and the property when a property is misspelled", function()
    local msg = H.errmsg(function() local _ = ts.RunCommandLine "Say hello" { CommandLin = "x" } end)
    assert.truthy(msg:find('^RunCommandLine "Say hello": '))
    assert.truthy(msg:find("CommandLin", 1, true))
    assert.truthy(msg:find("CommandLine", 1, true)) -- the valid names are listed
  end)

  it("report the caller's line for constructor errors", function()
    local msg = H.rawerr(function() local _ = ts.RunCommandLine "x" { Enabled = "no" } end)
    assert.truthy(msg:find("core_spec.lua:%d+: "), msg)
    assert.truthy(msg:find([[RunCommandLine "x": bad value for 'Enabled' (boolean expected, got string)]], 1, true))
  end)

  it("add the array part as children, in order", function()
    local g = ts.group "G" { ts.RunCommandLine "a", ts.group "b", ts.SetVariable "c" }
    assert.are.equal(3, #g)
    assert.are.same({ "a", "b", "c" }, { g[1].Name, g[2].Name, g[3].Name })
  end)

  it("build groups from a table with Name", function()
    local g = ts.group { Name = "Setup", Description = "first", ts.RunCommandLine "a" }
    assert.are.equal("Setup", g.Name)
    assert.are.equal("first", g.Description)
    assert.are.equal(1, g.count)
  end)

  it("build sequences in both forms", function()
    local a = ts.sequence "Deploy" { ts.group "G" }
    local b = ts.sequence { Name = "Deploy", ts.group "G" }
    local c = ts.sequence()
    assert.are.equal("Deploy", a.Name)
    assert.are.equal("Deploy", b.Name)
    assert.are.equal("sequence", c.kind)
    assert.are.equal(0, #c)
  end)

  it("reject children that are not steps", function()
    assert.are.equal('group "g" (0 steps): item 1 is not a step (got number)',
      H.errmsg(function() local _ = ts.group "g" { 5 } end))
    assert.are.equal('group "g" (0 steps): item 1 is not a step (got a condition)',
      H.errmsg(function() local _ = ts.group "g" { ts.variable("A", "exists") } end))
  end)

  it("reject a child that already has a parent", function()
    local a = ts.RunCommandLine "a"
    local _ = ts.group "g" { a }
    assert.are.equal('group "h" (0 steps): item 1 (RunCommandLine "a"): the step already has a parent (remove it first)',
      H.errmsg(function() local _ = ts.group "h" { a } end))
  end)

  it("reject non-table, non-string arguments", function()
    assert.are.equal("bad argument #1 to constructor (string or table expected, got number)",
      H.errmsg(function() local _ = ts.group(5) end))
  end)
end)

describe("step objects", function()
  it("print their class and name", function()
    assert.are.equal('RunCommandLine "Say hello"', tostring(ts.RunCommandLine "Say hello"))
    assert.are.equal('group "Prepare" (1 step)', tostring(ts.group "Prepare" { ts.RunCommandLine "a" }))
    assert.are.equal('group "Prepare" (0 steps)', tostring(ts.group "Prepare"))
    local seq = ts.sequence "x" { ts.group "g" { ts.RunCommandLine "a", ts.RunCommandLine "b" } }
    assert.are.equal('sequence "x" (3.10, 3 steps)', tostring(seq))
    assert.are.equal("sequence (3.10, 0 steps)", tostring(ts.sequence()))
  end)

  it("are one userdata per node, so they compare by identity", function()
    local g = ts.group "g" { ts.RunCommandLine "a" }
    local a = g[1]
    assert.is_true(rawequal(a, g:child(1)))
    assert.is_true(rawequal(a.parent, g))
    assert.are.equal(g, a.parent)
  end)

  it("are the same userdata whichever way a step is reached", function()
    -- steps(), children(), g[i], first/next and parent each find the box a step has;
    -- a step that never had one gets a new one, and so does one whose box was collected
    local seq = ts.sequence "s" { ts.group "g" { ts.RunCommandLine "a", ts.RunCommandLine "b" }, ts.Reboot "r" }
    local seen = {}
    for step in seq:steps() do seen[#seen + 1] = step end
    assert.are.equal(4, #seen)
    local g, a, b, r = seen[1], seen[2], seen[3], seen[4]
    assert.is_true(rawequal(g, seq[1]) and rawequal(g, seq.first) and rawequal(g, a.parent))
    assert.is_true(rawequal(a, g[1]) and rawequal(a, g.first) and rawequal(b, a.next) and rawequal(r, g.next))
    local kids = {}
    for c in g:children() do kids[#kids + 1] = c end
    assert.is_true(rawequal(kids[1], a) and rawequal(kids[2], b))
    local set = { [a] = true }
    for step in seq:steps() do if set[step] then set[step] = "again" end end
    assert.are.equal("again", set[a])
    -- boxes collected: the nodes get new ones, each still one per node
    seen, g, a, b, r, kids, set = nil, nil, nil, nil, nil, nil, nil
    collectgarbage()
    collectgarbage()
    local x = seq[1][2]
    assert.are.equal("b", x.Name)
    assert.is_true(rawequal(x, seq[1][1].next))
    local n = 0
    for step in seq:steps() do if rawequal(step, x) then n = n + 1 end end
    assert.are.equal(1, n)
  end)

  it("can be closed; the step is then reached again through a new object", function()
    local seq = ts.sequence "s" { ts.RunCommandLine "a", ts.RunCommandLine "b" }
    local closed
    do
      local c <close> = seq[1]
      closed = c
    end
    assert.matches("step is closed", H.errmsg(function() return closed.Name end))
    assert.are.equal("a", seq[1].Name) -- the node lives on in its tree
    assert.is_false(rawequal(closed, seq[1]))
    local plan = seq:plan() -- holds every step: the look-up finds the closed object
    do
      local c <close> = seq[2] -- luacheck: ignore
    end
    assert.are.equal("b", seq[2].Name)
    assert.is_true(rawequal(seq[2], seq[2]))
    assert.is_truthy(plan)
  end)

  it("refuse methods named like a field or a property", function()
    local methods = ts.core.step_methods
    assert.are.equal("a step method can not be named 'path': it is a step field",
      H.errmsg(function() methods.path = function() end end))
    assert.are.equal("a step method can not be named 'count': it is a step field",
      H.errmsg(function() methods.count = function() end end))
    assert.are.equal("a step method can not be named 'Name': capitalised names are properties",
      H.errmsg(function() methods.Name = function() end end))
    methods.shout = function(step) return step.Name .. "!" end
    assert.are.equal("g!", ts.group("g"):shout())
    methods.shout = nil
    assert.are.equal("no field 'shout' on step", H.errmsg(function() return ts.group("g").shout end))
  end)

  it("carry the type name in argument errors", function()
    local g = ts.group "g"
    assert.are.equal("bad argument #1 to 'add' (tasksequence.step expected, got number)",
      H.errmsg(function() g:add(5) end))
    assert.are.equal("tasksequence.step", getmetatable(g).__name)
  end)

  it("report kind and type", function()
    local seq = ts.sequence "s" { ts.group "g" { ts.RunCommandLine "a" } }
    assert.are.same({ "sequence", "SMS_TaskSequence" }, { seq.kind, seq.type })
    assert.are.same({ "group", "SMS_TaskSequence_Group" }, { seq[1].kind, seq[1].type })
    assert.are.same({ "action", "SMS_TaskSequence_RunCommandLineAction" }, { seq[1][1].kind, seq[1][1].type })
  end)

  it("raise on unknown lowercase fields", function()
    assert.are.equal("no field 'nme' on step", H.errmsg(function() return ts.group("g").nme end))
    assert.are.equal("no field 'nme' on step", H.errmsg(function() ts.group("g").nme = 1 end))
  end)

  it("refuse to assign read-only fields", function()
    assert.are.equal("field 'parent' of step is read-only", H.errmsg(function() ts.group("g").parent = 1 end))
    assert.are.equal("field 'type' of step is read-only", H.errmsg(function() ts.group("g").type = "x" end))
  end)

  it("raise on properties groups do not have", function()
    assert.are.equal("no property 'CommandLine' on a group (properties: Name, Description, Enabled, ContinueOnError, Condition)",
      H.errmsg(function() return ts.group("g").CommandLine end))
  end)

  it("give the element name and the sequence version", function()
    local seq = ts.sequence "s" { ts.group "g" { ts.RunCommandLine "a", ts.SubTasksequence "sub" } }
    assert.are.equal("sequence", seq.element)
    assert.are.equal("group", seq[1].element)
    assert.are.equal("step", seq[1][1].element)
    assert.are.equal("subtasksequence", seq[1][2].element)
    assert.are.equal("3.10", seq[1][1].version)
    assert.are.equal("none", seq.wrapper)
    assert.are.equal(seq, seq[1][1].sequence)
  end)
end)
