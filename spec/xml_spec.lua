local ts = require "tasksequence"
local H = require "helpers"

-- what shared/spec/xml-format.md allows, element by element
local ALLOWED = {
  sequence = { version = true, name = true, description = true },
  group = { name = true, description = true, disable = true, continueOnError = true },
  step = { type = true, name = true, description = true, disable = true, continueOnError = true, timeout = true,
           runIn = true, successCodeList = true, retryCount = true, runFromNet = true },
  subtasksequence = { type = true, name = true, description = true, disable = true, continueOnError = true,
                      timeout = true, successCodeList = true, retryCount = true, runFromNet = true },
  condition = {},
  expression = { type = true },
  operator = { type = true },
  action = {},
  defaultVarList = {},
  variable = { name = true, property = true, hidden = true },
}
local STEP_ORDER = { "type", "name", "description", "disable", "continueOnError", "timeout", "runIn",
                     "successCodeList", "retryCount", "runFromNet" }

local function build()
  return ts.sequence "Deploy" {
    ts.group "Level 1" {
      Condition = ts.condition {
        ts.variable("A", "equals", "1"),
        ts.any { ts.variable("B", "equals", "2"), ts.none { ts.variable("C", "exists") } },
      },
      ts.RunCommandLine "Say hello" { CommandLine = "cmd /c echo hello", Timeout = 120 },
      ts.group "Level 2" {
        ts.SetVariable "Set Foo" { VariableName = "Foo", VariableValue = "Bar" },
        ts.group "Level 3" {
          ts.Reboot "Restart" { Target = "HD" },
          ts.InstallApplication "Apps" { AppInfo = { { Name = "App1", DisplayName = "One" } } },
          ts.RunPowerShellScript "Script" { ScriptName = "x.ps1", PackageID = "PS100001", ExecutionPolicy = "Bypass" },
        },
      },
    },
    ts.RunCommandLine "Last" { CommandLine = "cmd /c exit 0", Enabled = false, ContinueOnError = true },
  }
end

local function attr_order(el)
  local out = {}
  for i, name in ipairs(el.attr) do out[i] = name end
  return out
end

describe("a sequence built in Lua", function()
  local xml, tree
  setup(function()
    xml = build():to_xml()
    tree = H.lxp_parse(xml)
  end)

  it("writes well-formed XML", function()
    if not tree then return pending("lxp not installed") end
    assert.are.equal("sequence", tree.tag)
    assert.are.equal("3.10", tree.attr.version)
  end)

  it("uses only the elements and attributes of the format", function()
    if not tree then return pending("lxp not installed") end
    for _, el in ipairs(H.elements(tree)) do
      local allowed = ALLOWED[el.tag]
      assert.is_not_nil(allowed, "unexpected element " .. el.tag)
      for k in pairs(el.attr) do
        if type(k) == "string" then assert.is_true(allowed[k] == true, ("unexpected attribute %s on %s"):format(k, el.tag)) end
      end
    end
  end)

  it("writes step attributes in ConfigMgr order", function()
    if not tree then return pending("lxp not installed") end
    for _, el in ipairs(H.elements(tree)) do
      if el.tag == "step" then
        local got, pos = attr_order(el), {}
        for i, n in ipairs(STEP_ORDER) do pos[n] = i end
        for i = 2, #got do assert.is_true(pos[got[i - 1]] < pos[got[i]], table.concat(got, " ")) end
        for _, must in ipairs { "type", "name", "description", "runIn", "successCodeList", "retryCount", "runFromNet" } do
          assert.is_not_nil(el.attr[must], must)
        end
      end
    end
  end)

  it("nests groups three deep with five action classes", function()
    local seq = assert(ts.parse(xml))
    local deepest, types = 0, {}
    for s in seq:steps() do
      deepest = math.max(deepest, s.depth)
      if s.kind == "action" then types[s.type] = true end
    end
    local n = 0
    for _ in pairs(types) do n = n + 1 end
    assert.are.equal(4, deepest)
    assert.are.equal(5, n)
  end)

  it("writes the condition A and (B or not C) as nested operators", function()
    if not tree then return pending("lxp not installed") end
    local group = tree[1]
    local cond = group[1]
    assert.are.equal("condition", cond.tag)
    assert.are.equal("expression", cond[1].tag)
    assert.are.equal("SMS_TaskSequence_VariableConditionExpression", cond[1].attr.type)
    assert.are.equal("operator", cond[2].tag)
    assert.are.equal("or", cond[2].attr.type)
    assert.are.equal("expression", cond[2][1].tag)
    assert.are.equal("operator", cond[2][2].tag)
    assert.are.equal("not", cond[2][2].attr.type)
    local vars = {}
    for _, v in ipairs(cond[1]) do vars[#vars + 1] = v.attr.name .. "=" .. v.text end
    assert.are.same({ "Operator=equals", "Value=1", "Variable=A" }, vars)
  end)

  it("writes disable and continueOnError only when set", function()
    if not tree then return pending("lxp not installed") end
    local last = tree[2]
    assert.are.equal("true", last.attr.disable)
    assert.are.equal("true", last.attr.continueOnError)
    assert.is_nil(tree[1][2].attr.disable)
  end)

  it("reads back to the same text", function()
    local seq = assert(ts.parse(xml))
    assert.are.equal(xml, seq:to_xml())
    assert.are.equal('A equals "1" and (B equals "2" or not C exists)', tostring(seq[1].Condition))
  end)
end)

describe("special characters", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rm_rf(dir) end)

  local NAME, DESC = "<&>\"'", "line one\r\nline two\n\ttabbed"

  it("survive a save and a load unchanged", function()
    local seq = ts.sequence "s" { ts.RunCommandLine { Name = NAME, Description = DESC, CommandLine = 'a < b & "c"' } }
    assert.is_true(seq:save(dir .. "/x.xml"))
    local back = assert(ts.load(dir .. "/x.xml"))
    assert.are.equal(NAME, back[1].Name)
    assert.are.equal(DESC, back[1].Description)
    assert.are.equal('a < b & "c"', back[1].CommandLine)
  end)

  it("are escaped in the written bytes", function()
    local seq = ts.sequence "s" { ts.RunCommandLine { Name = NAME, Description = DESC, CommandLine = "x" } }
    assert.is_true(seq:save(dir .. "/x.xml"))
    local bytes = H.read(dir .. "/x.xml")
    assert.truthy(bytes:find('name="&lt;&amp;&gt;&quot;\'"', 1, true))
    assert.truthy(bytes:find("line one&#xD;&#xA;line two&#xA;&#x9;tabbed", 1, true))
    assert.is_nil(bytes:find("\r", 1, true))
  end)

  it("are read back by an independent parser", function()
    local seq = ts.sequence "s" { ts.RunCommandLine { Name = NAME, Description = DESC, CommandLine = "x" } }
    local tree = H.lxp_parse(seq:to_xml())
    if not tree then return pending("lxp not installed") end
    assert.are.equal(NAME, tree[1].attr.name)
    assert.are.equal(DESC, tree[1].attr.description)
  end)
end)

describe("loading and parsing", function()
  it("parse returns nil and name:line:col: message on bad XML", function()
    local seq, err = ts.parse("<sequence version='3.10'><group></sequence>", "bad.xml")
    assert.is_nil(seq)
    assert.truthy(err:match("^bad%.xml:1:%d+: "), err)
  end)

  it("parse names the document <string> by default", function()
    local _, err = ts.parse("<sequence")
    assert.truthy(err:match("^<string>:%d+:%d+: "), err)
  end)

  it("load returns nil and the path for a missing file", function()
    local seq, err = ts.load("/nonexistent/x.xml")
    assert.is_nil(seq)
    assert.truthy(err:find("/nonexistent/x.xml", 1, true))
  end)

  it("load rejects a document that is not a task sequence", function()
    local dir = H.tmpdir()
    H.write(dir .. "/x.xml", "<html><body/></html>")
    local seq, err = ts.load(dir .. "/x.xml")
    H.rm_rf(dir)
    assert.is_nil(seq)
    assert.truthy(err:find(dir .. "/x.xml", 1, true))
  end)

  it("parse keeps a document byte for byte", function()
    local text = '<?xml version="1.0"?>\r\n<sequence version="3.00">\r\n\t<group name="a" description=""  expand="true">\r\n\t</group>\r\n</sequence>\r\n'
    assert.are.equal(text, assert(ts.parse(text)):to_xml())
  end)

  it("round-trips every real document byte for byte", function()
    local files = H.corpus_files()
    if #files == 0 then return pending("corpus not available") end
    for _, path in ipairs(files) do
      local seq = assert(ts.load(path))
      assert.are.equal(H.read(path), seq:to_xml(), path)
    end
  end)

  it("gives a wrapped document's package fields", function()
    local dir = H.corpus()
    if not dir then return pending("corpus not available") end
    local seq = assert(ts.load(dir .. "/071-forevanyeung-rsc002a6-objectxml.xml"))
    assert.are.equal("cim", seq.wrapper)
    assert.are.equal("RSC002A6", seq.package.PackageID)
    assert.are.equal(seq.package.Name, seq.Name)
    local n = 0
    for k, v in pairs(seq.package) do n = n + 1; assert.are.equal("string", type(v)) end
    assert.are.equal(#seq.package, n)
    assert.is_nil(ts.sequence().package)
  end)

  it("edits a real document and changes only that spot", function()
    local dir = H.corpus()
    if not dir then return pending("corpus not available") end
    local path = dir .. "/045-forevanyeung-rsc002a6-extracted.xml"
    local seq = assert(ts.load(path))
    local step = seq:find { type = "RunCommandLine" }[1]
    local old = step.Name
    step.Name = old .. " (edited)"
    local a, b = H.read(path), seq:to_xml()
    assert.are.equal(#a + #" (edited)", #b)
    assert.truthy(b:find(old .. " (edited)", 1, true))
  end)
end)

describe("steps added to a read document", function()
  it("follow the layout of the place they are written at, also after a move", function()
    local seq = ts.parse('<sequence version="3.10">\n  <group name="A" description="">\n    <group name="B" description="">\n'
      .. '      <step type="X_Y" name="s"/>\n    </group>\n  </group>\n</sequence>')
    local g = ts.group "New"
    seq[1][1]:add(g) -- filled three levels down, then moved to the top
    g:add(ts.action("X_Y") "c")
    g:move_to(seq)
    local step = '<step type="X_Y" name="%s" description="" runIn="WinPEandFullOS" successCodeList="0" retryCount="0" runFromNet="false">'
    assert.are.equal('<sequence version="3.10">\n  <group name="A" description="">\n    <group name="B" description="">\n'
      .. '      <step type="X_Y" name="s"/>\n    </group>\n  </group>\n  <group name="New" description="">\n'
      .. '    ' .. step:format("c") .. '\n      <action></action>\n    </step>\n  </group>\n</sequence>', seq:to_xml())
    -- filled in an LF document indented with spaces, moved into a CRLF one indented with tabs
    local other = ts.parse('<sequence version="3.10">\r\n\t<group name="T" description="">\r\n\t\t<step type="X_Y" name="t"/>\r\n'
      .. '\t</group>\r\n</sequence>')
    local h = ts.group "Moved"
    seq[1]:add(h)
    h:add(ts.action("X_Y") "d")
    other[1]:add(h:remove())
    assert.are.equal('<sequence version="3.10">\r\n\t<group name="T" description="">\r\n\t\t<step type="X_Y" name="t"/>\r\n'
      .. '\t\t<group name="Moved" description="">\r\n\t\t\t' .. step:format("d") .. '\r\n\t\t\t\t<action></action>\r\n'
      .. '\t\t\t</step>\r\n\t\t</group>\r\n\t</group>\r\n</sequence>', other:to_xml())
  end)
end)

describe("a step added to a group that holds only a comment", function()
  local doc = '<sequence version="3.10">\n  <group name="A" description="">\n    <!-- only a comment -->\n  </group>\n</sequence>'
  local step = '<step type="X_Y" name="%s" description="" runIn="WinPEandFullOS" successCodeList="0" retryCount="0" runFromNet="false">'

  it("goes after the comment, indented as it is, before the closing line", function()
    local seq = ts.parse(doc)
    seq[1]:add(ts.action("X_Y") "e")
    assert.are.equal('<sequence version="3.10">\n  <group name="A" description="">\n    <!-- only a comment -->\n'
      .. '    ' .. step:format("e") .. '\n      <action></action>\n    </step>\n  </group>\n</sequence>', seq:to_xml())
  end)

  it("does so too when the group was moved into a group built in Lua", function()
    local seq = ts.parse(doc)
    local g = ts.group "New"
    seq:add(g)
    g:add(ts.action("X_Y") "c")
    local a = seq[1]
    g:add(a:remove())
    a:add(ts.action("X_Y") "d")
    local out = seq:to_xml()
    assert.truthy(out:find('    <!-- only a comment -->\n    ' .. step:format("d") .. '\n      <action></action>\n    </step>\n  </group>', 1, true))
    assert.are.equal("d", ts.parse(out)[1][2][1].Name)
  end)
end)

describe("saving", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() os.execute("chmod -R u+w '" .. dir .. "'"); H.rm_rf(dir) end)

  it("writes the document and returns true", function()
    local seq = ts.sequence "s" { ts.group "g" }
    assert.is_true(seq:save(dir .. "/x.xml"))
    assert.are.equal(seq:to_xml(), H.read(dir .. "/x.xml"))
  end)

  it("from a step saves the document that holds it", function()
    local seq = ts.sequence "s" { ts.group "g" }
    assert.is_true(seq[1]:save(dir .. "/x.xml"))
    assert.are.equal(seq:to_xml(), H.read(dir .. "/x.xml"))
  end)

  it("into a missing directory fails and leaves nothing", function()
    local ok, err = ts.sequence "s":save(dir .. "/missing/x.xml")
    assert.is_nil(ok)
    assert.truthy(err:find(dir .. "/missing/x.xml", 1, true))
    assert.are.same({}, H.listdir(dir))
  end)

  it("over a file in a read-only directory fails and keeps the old file", function()
    local path = dir .. "/ro/x.xml"
    os.execute("mkdir '" .. dir .. "/ro'")
    H.write(path, "old")
    os.execute("chmod a-w '" .. dir .. "/ro'")
    local probe = io.open(dir .. "/ro/probe", "w")
    if probe then -- permissions are not enforced (running as root)
      probe:close()
      os.remove(dir .. "/ro/probe")
      return pending("permissions are not enforced for this user")
    end
    local ok, err = ts.sequence "s":save(path)
    assert.is_nil(ok)
    assert.truthy(err:find(path, 1, true))
    assert.are.equal("old", H.read(path))
    assert.are.same({ "x.xml" }, H.listdir(dir .. "/ro"))
  end)

  it("over a directory fails and keeps it", function()
    os.execute("mkdir '" .. dir .. "/d'")
    local ok, err = ts.sequence "s":save(dir .. "/d")
    assert.is_nil(ok)
    assert.truthy(err:find(dir .. "/d", 1, true))
    assert.are.same({ "d" }, H.listdir(dir))
  end)

  it("replaces an existing file", function()
    H.write(dir .. "/x.xml", "old")
    assert.is_true(ts.sequence "s":save(dir .. "/x.xml"))
    assert.truthy(H.read(dir .. "/x.xml"):find("^<sequence"))
  end)
end)
