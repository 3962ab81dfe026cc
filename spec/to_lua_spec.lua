-- XML -> Lua -> XML: seq:to_lua(), to_lua.from_xml and the builder of generated scripts.
local ts = require "tasksequence"
local H = require "helpers"
local to_lua = require "tasksequence.to_lua"

local SHARED = os.getenv("TSQ_SHARED")

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

local PKG = [[<?xml version="1.0"?>
<SmsTaskSequencePackage xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BootImageID>PS100005</BootImageID>
  <Description />
  <Name>Deploy &amp; capture</Name>
  <SequenceData>
    <sequence version="3.00">
      <step type="SMS_TaskSequence_RebootAction" name="Restart" description="" runIn="WinPEandFullOS" successCodeList="0">
        <action>smsboot.exe /target:HD</action>
      </step>
    </sequence>
  </SequenceData>
</SmsTaskSequencePackage>
]]

local CIM = table.concat({
  '<INSTANCE CLASSNAME="SMS_TaskSequencePackage">',
  '  <PROPERTY NAME="Name" CLASSORIGIN="SMS_PackageBaseclass" TYPE="string">',
  '    <VALUE>Icon test</VALUE>',
  '  </PROPERTY>',
  '  <PROPERTY.ARRAY NAME="Icon" CLASSORIGIN="SMS_PackageBaseclass" TYPE="uint8">',
  '    <VALUE.ARRAY>',
  '      <VALUE>137</VALUE>',
  '      <VALUE>80</VALUE>',
  '      <VALUE>0</VALUE>',
  '      <VALUE>255</VALUE>',
  '    </VALUE.ARRAY>',
  '  </PROPERTY.ARRAY>',
  '  <PROPERTY NAME="Sequence" CLASSORIGIN="SMS_TaskSequencePackage" TYPE="string">',
  '    <VALUE><![CDATA[<sequence version="3.10"><group name="G" description="" /></sequence>]]></VALUE>',
  '  </PROPERTY>',
  '</INSTANCE>', "" }, "\r\n")

describe("to_lua.from_xml of a wrapped document", function()
  it("writes the package fields as Lua and keeps only the rest of the wrapper as text", function()
    local script = assert(to_lua.from_xml(PKG, "pkg.xml"))
    assert.matches('\n  package = {\n    BootImageID = "PS100005",\n    Name = "Deploy & capture",\n  },\n', script)
    assert.matches("<Name><!%-%-tsq:field Name%-%-></Name>", script)
    assert.is_nil(script:find("PS100005</BootImageID>", 1, true))
    local seq = run(script)
    assert.equals("Deploy & capture", seq.package.Name)
    assert.is_true(to_lua.equal_xml(PKG, seq:to_xml()))
  end)

  it("builds the package with the fields the script says", function()
    local script = assert(to_lua.from_xml(PKG, "pkg.xml")):gsub('Name = "Deploy & capture"', 'Name = "Deploy <x>"')
    local seq = run(script)
    assert.equals("Deploy <x>", seq.package.Name)
    assert.matches("<Name>Deploy &lt;x&gt;</Name>", seq:to_xml())
  end)

  it("says which package field has no place in the wrapper", function()
    local script = assert(to_lua.from_xml(PKG, "pkg.xml")):gsub("BootImageID =", "BootImageId =")
    local ok, err = pcall(run, script)
    assert.is_false(ok)
    assert.matches("package field BootImageI[dD] ", tostring(err))
  end)

  it("writes a uint8 array such as the icon as ts.bytes in base64", function()
    local script = assert(to_lua.from_xml(CIM, "object.xml"))
    assert.matches('\n    Icon = ts%.bytes %[%[\niVAA/w==\n%]%],\n', script)
    assert.matches("\n    <VALUE.ARRAY>\n      <!%-%-tsq:items Icon%-%->\n    </VALUE.ARRAY>", script)
    local seq = run(script)
    assert.is_true(to_lua.equal_xml(CIM, seq:to_xml()))
    assert.matches("      <VALUE>137</VALUE>\r?\n      <VALUE>80</VALUE>\r?\n      <VALUE>0</VALUE>\r?\n      <VALUE>255</VALUE>\r?\n    </VALUE.ARRAY>", seq:to_xml())
    assert.equals(script, to_lua.from_xml(seq:to_xml(), "object.xml"))
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

H.describe_corpus("XML -> Lua -> XML over the real corpus", function(CORPUS)
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
        -- a script no bigger than its document, give or take the header (the console
        -- exports' icons once made 3.4 MB scripts)
        local xml = read(path)
        assert.is_true(#script <= #xml * 1.25 + 400, #script .. " bytes of script for " .. #xml .. " of XML")
      end)
    end
  end
  p:close()
end)
