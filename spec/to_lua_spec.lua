-- XML -> Lua -> XML: seq:to_lua(), to_lua.from_xml and the builder of generated scripts.
local ts = require "tasksequence"
local to_lua = require "tasksequence.to_lua"

local SHARED = os.getenv("TSQ_SHARED")
local CORPUS = SHARED and SHARED .. "/corpus/real"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Runs a generated script the way tsq build does; returns the sequence.
local function run(script)
  local chunk = assert(load(script, "=script"))
  return chunk()
end

local referee = "/usr/bin/python3"
local have_referee = os.execute(referee .. " -c 'import lxml' 2>/dev/null") == true
  and SHARED and read(SHARED .. "/bench/ts_equal.py") ~= nil

local function same_document(a_path, b_text)
  if have_referee then
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write(b_text)
    f:close()
    local p = io.popen(referee .. " " .. SHARED .. "/bench/ts_equal.py '" .. a_path .. "' '" .. tmp .. "'")
    local out = p:read("a")
    p:close()
    os.remove(tmp)
    return out:match("^equal") ~= nil, out
  end
  return to_lua.equal_xml(read(a_path), b_text), "differ"
end

local DOC = [[<?xml version="1.0"?>
<sequence version="3.00" name="Demo">
	<group name="Install" description="" disable="false" continueOnError="false" expand="true">
		<step type="SMS_TaskSequence_RunCommandLineAction" name="Hello" description="" disable="false" continueOnError="false" successCodeList="0 3010" runIn="WinPEandFullOS" startIn="">
			<defaultVarList>
				<variable name="CommandLine" property="CommandLine">cmd /c "echo ]] .. "]]" .. [[ &amp; more"</variable>
			</defaultVarList>
			<action>cmd /c "echo ]] .. "]]" .. [[ &amp; more"</action>
			<condition>
				<expression type="SMS_TaskSequence_VariableConditionExpression">
					<variable name="Variable">Model</variable>
					<variable name="Operator">like</variable>
					<variable name="Value">%Latitude%</variable>
				</expression>
			</condition>
		</step>
		<step name="No type" description="" startIn="" successCodeList="0">
			<action>cscript.exe x.wsf</action>
			<unknown a="1">kept</unknown>
		</step>
	</group>
</sequence>
]]

describe("to_lua.from_xml", function()
  it("writes constructors, nesting by indentation and conditions as text", function()
    local script = assert(to_lua.from_xml(DOC, "demo.xml"))
    assert.matches('^%-%- demo%.xml as a script', script)
    assert.matches('\nreturn ts%.sequence {\n', script)
    assert.matches('\n  ts%.group "Install" {\n', script)
    assert.matches('\n    ts%.RunCommandLine "Hello" {\n', script)
    assert.matches('Condition = ts%.condition ', script)
    assert.matches('\n    ts%.step "No type" {\n', script)
    assert.matches('indent = "\\t"', script)
    assert.matches('Enabled = true', script)
  end)

  it("keeps what it has no constructor form for as raw XML", function()
    local script = assert(to_lua.from_xml(DOC, "demo.xml"))
    assert.matches('ts%.raw %[%[<unknown a="1">kept</unknown>%]%]', script)
  end)

  it("uses long strings that survive ]] in the text", function()
    local script = assert(to_lua.from_xml(DOC, "demo.xml"))
    assert.matches('%[=%[cmd /c "echo %]%] & more"%]=%]', script)
  end)

  it("gives back the same document", function()
    local seq = run(assert(to_lua.from_xml(DOC)))
    assert.is_true(to_lua.equal_xml(DOC, seq:to_xml()))
  end)

  it("is stable: the same document gives the same text", function()
    assert.equals(to_lua.from_xml(DOC, "x"), to_lua.from_xml(DOC, "x"))
    local seq = run(to_lua.from_xml(DOC, "x"))
    assert.equals(to_lua.from_xml(DOC, "x"), to_lua.from_xml(seq:to_xml(), "x"))
  end)

  it("reports a document it can not read", function()
    local s, err = to_lua.from_xml("<sequence><group></sequence>", "bad.xml")
    assert.is_nil(s)
    assert.matches("^bad%.xml: ", err)
  end)

  it("is what seq:to_lua() returns", function()
    local seq = ts.parse(DOC)
    local script = assert(seq:to_lua())
    assert.is_true(to_lua.equal_xml(DOC, run(script):to_xml()))
  end)
end)

describe("the builder of generated scripts", function()
  it("accepts steps made with the module's own constructors", function()
    local b = to_lua.builder
    local seq = b.sequence {
      layout = { newline = "\n", indent = "  " },
      b.group "G" { Description = "", ts.RunCommandLine { Name = "new", CommandLine = "cmd" } },
    }
    local found = seq:find { name = "new" }
    assert.equals(1, #found)
    assert.equals("cmd", found[1].CommandLine)
  end)

  it("says which script does not parse", function()
    local b = to_lua.builder
    assert.has_error(function() b.sequence { b.raw "<step>" } end)
  end)
end)

describe("XML -> Lua -> XML over the real corpus", function()
  if not (CORPUS and read(CORPUS .. "/MANIFEST.tsv")) then
    pending("TSQ_SHARED is not set: no corpus")
    return
  end
  local p = io.popen("ls -1 '" .. CORPUS .. "'")
  for name in p:lines() do
    if name:match("%.xml$") then
      it("gives back " .. name, function()
        local path = CORPUS .. "/" .. name
        local script = assert(to_lua.from_xml(read(path), name))
        local seq = run(script)
        local ok, why = same_document(path, seq:to_xml())
        assert.is_true(ok, why)
        assert.equals(script, to_lua.from_xml(read(path), name))
      end)
    end
  end
  p:close()
end)
