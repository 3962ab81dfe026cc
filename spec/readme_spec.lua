-- The README's Lua examples run as written: the tour on a document of its own, the
-- sequence-as-code script, and the conditions and engine example on the tour's sequence.
local ts = require "tasksequence"

local function blocks()
  local f = assert(io.open("README.md", "rb"))
  local text = f:read("a")
  f:close()
  local out = {}
  for code in text:gmatch("```lua\n(.-)```") do out[#out + 1] = code end
  return out
end

local function chunk(code, name, env)
  return assert(load(code, "=README " .. name, "t", env))
end

describe("the README's examples", function()
  local code = blocks()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  local doc = dir .. "/Windows 11.xml"

  setup(function()
    local seq = ts.sequence "Windows 11" {
      ts.group "Install" {
        ts.RunCommandLine "Copy logs" { CommandLine = [[xcopy \\oldserver\logs C:\logs]] },
        ts.InstallApplication "Office" {},
      },
    }
    assert(seq:save(doc))
  end)

  teardown(function()
    os.remove(doc)
    os.remove(dir)
  end)

  it("are three Lua blocks", function()
    assert.equals(3, #code)
  end)

  it("tour: edits a document in place", function()
    local env = setmetatable({}, { __index = _G })
    -- the tour names its document relative to the current folder: run it with paths rewritten
    local body = code[1]:gsub('"Windows 11.xml"', string.format("%q", doc))
    chunk(body, "tour", env)()
    local seq = assert(ts.load(doc))
    local steps = seq:find { type = "RunCommandLine" }
    assert.equals([[xcopy \\newserver\logs C:\logs]], steps[1].CommandLine)
    assert.equals('_SMSTSInWinPE equals "false"', tostring(seq:find { type = "InstallApplication" }[1].Condition))
  end)

  it("sequence as code: returns the sequence it describes", function()
    local seq = chunk(code[2], "script", setmetatable({}, { __index = _G }))()
    assert.equals("Windows 11 bare metal", seq.Name)
    assert.equals(2, #seq)
    assert.equals("Restart", seq[2][2].Name)
    assert.same({}, (seq:validate()))
  end)

  it("conditions and the engine: evaluates and runs the tour's sequence", function()
    local printed = {}
    local env = setmetatable({
      ts = ts,
      seq = assert(ts.load(doc)),
      print = function(first) printed[#printed + 1] = tostring(first) end,
    }, { __index = _G })
    chunk(code[3], "conditions", env)()
    assert.equals('_SMSTSInWinPE equals "false" and (Model like "%Latitude%" or not wmi "SELECT * FROM Win32_Battery")',
      printed[1])
    assert.is_true(#printed > 2) -- one line per status record follows
  end)
end)

describe("the README's module table", function()
  local f = assert(io.open("README.md", "rb"))
  local text = f:read("a")
  f:close()
  local section = text:match("\n## The module at a glance\n(.-)\n## ") or ""

  it("names every function and field of the module but the class constructors", function()
    local constructors = {}
    for _, c in ipairs(ts.action_classes) do constructors[c.short_name] = true end
    local missing = {}
    for k in pairs(ts) do
      if not constructors[k] and k ~= "core" and not section:find("ts." .. k .. "[^%w_]") then
        missing[#missing + 1] = k
      end
    end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("names nothing the module does not have", function()
    local unknown = {}
    for k in section:gmatch("`ts%.([%w_]+)") do
      if ts[k] == nil and k ~= "core" then unknown[#unknown + 1] = k end
    end
    assert.are.same({}, unknown)
  end)

  it("leaves the binding's plumbing in ts.core", function()
    assert.is_nil(rawget(ts, "move"))
    assert.is_nil(rawget(ts, "constructor"))
    assert.is_function(ts.core.move)
    assert.is_function(ts.core.constructor)
  end)
end)
