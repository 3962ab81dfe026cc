-- tsq eval and tsq simulate on real documents ($TSQ_SHARED/corpus/real) with machine files
-- written out here: the marks, the reasons, the records and their formats.
local H = require "helpers"
local tsq = H.tsq

local CORPUS = H.corpus()
local CLIENT = CORPUS and CORPUS .. "/067-lipkegu-custom-client-ts.xml"   -- MDT phases, os, software
local UPGRADE = CORPUS and CORPUS .. "/046-drfiles-win10-upgrade-export.xml" -- drivers by WMI model
local REPLACE = CORPUS and CORPUS .. "/023-mdt8443-sccm-clientreplace-smspkg.xml" -- folder conditions

local dir
setup(function() dir = H.tmpdir() end)
teardown(function() H.rm_rf(dir) end)

local function machine(name, text)
  local path = dir .. "/" .. name
  H.write(path, text)
  return path
end

-- The output line of step `index` ("6.8.2"), without its indentation.
local function line_of(out, index)
  for l in out:gmatch("[^\n]+") do
    local mark, idx, rest = l:match("^%s*(%S+)%s+(%S+) (.*)$")
    if idx == index then return mark .. " " .. rest end
  end
  return nil
end

local OFFICE = 'software ThisVersion "{90160000-0011-0000-0000-0000000FF1CE}" name "Microsoft Office Professional '
  .. 'Plus 2016" upgrade "{00160000-0011-0000-0000-0000000FF1CE}" version "16.0.4266.1001"'

H.describe_corpus("tsq eval on a real document with a machine file", function()
  local m
  before_each(function()
    m = machine("client.lua", [[
return {
  variables = { PHASE = "INSTALL", Architecture = "X64", OSCurrentVersion = "10.0.19045",
                IsLaptop = "FALSE", REFIMAGE_MODE = "TRUE", REFIMAGE_INSTALL_APPS = "TRUE" },
  software = { { ProductCode = "{90160000-0011-0000-0000-0000000FF1CE}", Version = "16.0.4266.1001" } },
}
]])
  end)

  it("marks each step run or skip with the reason; --var overrides the machine file", function()
    local out, err, rc = tsq("eval", CLIENT, "--machine", m, "--var", "PHASE=STATERESTORE")
    assert.equals(0, rc, err)
    assert.equals('skip Validation [group]: condition is false: any(PHASE equals "VALIDATION" [Variable, Operator, '
      .. 'Value]) (no operand holds)', line_of(out, "2"))
    assert.equals("skip Validate [BDD_Validate]: group 'Validation' is skipped by its condition", line_of(out, "2.1"))
    assert.equals('skip Install [group]: condition is false: PHASE equals "INSTALL" [Variable, Operator, Value] '
      .. '(PHASE is "STATERESTORE")', line_of(out, "4"))
    assert.equals("run State Restore [group]", line_of(out, "6"))
    -- os expressions against Architecture and OSCurrentVersion, and a variable
    assert.equals("run Disable Hibernation [RunCommandLine]", line_of(out, "6.4.4"))
    assert.equals('skip WIN7-Updates [group]: condition is false: os "X86" equals "6.10.7601.1" or os "X64" '
      .. 'equals "6.10.7601.1" (no operand holds)', line_of(out, "6.5"))
    assert.equals("skip Install KB3020369 [RunCommandLine]: group 'WIN7-Updates' is skipped by its condition",
      line_of(out, "6.5.1"))
    -- the software fact the machine describes
    assert.equals("run Activate Office 2016 [BDD_RunPowerShellAction]", line_of(out, "6.8.2"))
    assert.equals('skip Prepare Only [group]: condition is false: DoCapture equals "PREPARE" [Variable, Operator, '
      .. 'Value] (variable DoCapture undefined)', line_of(out, "6.13.1"))
    assert.matches("\n36 run, 53 skipped\n$", out)
  end)

  it("follows the machine file: another phase, another laptop", function()
    local out, err, rc = tsq("eval", CLIENT, "--machine", m, "--var", "IsLaptop=TRUE")
    assert.equals(0, rc, err)
    assert.equals("run Install [group]", line_of(out, "4"))
    assert.equals('skip Copy OEM Files [RunCommandLine]: condition is false: REFIMAGE_MODE equals "FALSE" '
      .. '[Variable, Operator, Value] (REFIMAGE_MODE is "TRUE")', line_of(out, "4.2"))
    assert.equals("skip Disable Hibernation [RunCommandLine]: group 'State Restore' is skipped by its condition",
      line_of(out, "6.4.4"))
  end)

  it("names the operand that decided inside an and, with the evaluator's reason", function()
    local bare = machine("nosoftware.lua", [[
return { variables = { PHASE = "STATERESTORE", Architecture = "X64", OSCurrentVersion = "10.0",
                       REFIMAGE_MODE = "TRUE", REFIMAGE_INSTALL_APPS = "TRUE" },
         software = {} }
]])
    local out, err, rc = tsq("eval", CLIENT, "--machine", bare)
    assert.equals(0, rc, err)
    assert.equals("skip Activate Office 2016 [BDD_RunPowerShellAction]: condition is false: " .. OFFICE
      .. " (not installed)", line_of(out, "6.8.2"))
  end)

  it("marks err, names the fact and exits 1 when the machine does not describe it", function()
    local out, err, rc = tsq("eval", CLIENT, "--var", "PHASE=STATERESTORE", "--var", "Architecture=X64",
      "--var", "OSCurrentVersion=10.0", "--var", "REFIMAGE_MODE=TRUE", "--var", "REFIMAGE_INSTALL_APPS=TRUE")
    assert.equals(1, rc, err)
    assert.equals("err Activate Office 2016 [BDD_RunPowerShellAction]: condition can not be evaluated: software "
      .. "{90160000-0011-0000-0000-0000000FF1CE} is not described", line_of(out, "6.8.2"))
    assert.matches(", 1 undecided\n$", out)
  end)

  it("asks a WMI function of the machine file and expands %VAR% in folder paths", function()
    local wmi = machine("dell.lua", [[
return {
  variables = { _SMSTSOSUpgradeActionReturnCode = "3247440400", _SMSTSSetupRollback = "false" },
  wmi = function(namespace, query)
    assert(namespace == "root\\cimv2")
    if query:find("Win32_ComputerSystem", 1, true) then
      return query:find("Latitude E7270", 1, true) and 1 or 0
    end
  end,
  folders = { ["C:\\W10Drivers"] = {} },
}
]])
    local out, err, rc = tsq("eval", UPGRADE, "--machine", wmi)
    assert.equals(0, rc, err)
    assert.equals("run Dell Latitude E7270 [DownloadPackageContent]", line_of(out, "2.1.1"))
    assert.equals("skip HP EliteBook 8560w [DownloadPackageContent]: condition is false: wmi \"SELECT * FROM "
      .. "Win32_ComputerSystem WHERE Model LIKE '%EliteBook 8560w%'\" (0 rows)", line_of(out, "2.1.2"))
    assert.equals("run Upgrade Operating System [UpgradeOperatingSystem]", line_of(out, "2.2"))
    assert.equals('skip Rollback [group]: condition is false: _SMSTSSetupRollback equals "true" '
      .. '(_SMSTSSetupRollback is "false")', line_of(out, "4"))

    local rep = machine("replace.lua", [[return { folders = { ["C:\\MDT\\Scripts"] = {} } }]])
    out, err, rc = tsq("eval", REPLACE, "--machine", rep, "--var", "ScriptRoot=C:\\MDT\\Scripts")
    assert.equals(0, rc, err)
    assert.equals('skip Use Toolkit Package [BDD_UsePackage]: condition is false: not folder "%ScriptRoot%" '
      .. "(an operand holds)", line_of(out, "1.6.3"))
    -- a folders table describes the whole disk; without one the folder is not described
    out, err, rc = tsq("eval", REPLACE, "--var", "ScriptRoot=C:\\MDT\\Scripts")
    assert.equals(1, rc, err)
    assert.equals("err Use Toolkit Package [BDD_UsePackage]: condition can not be evaluated: folder "
      .. "C:\\MDT\\Scripts is not described", line_of(out, "1.6.3"))
    out, err, rc = tsq("eval", REPLACE)
    assert.equals(1, rc, err)
    assert.equals("err Use Toolkit Package [BDD_UsePackage]: condition can not be evaluated: folder "
      .. "%ScriptRoot% is not described", line_of(out, "1.6.3"))
  end)

  it("reports a broken machine file with status 2", function()
    local bad = machine("bad.lua", "return 42")
    local _, err, rc = tsq("eval", CLIENT, "--machine", bad)
    assert.equals(2, rc)
    assert.matches("must return a table", err)
  end)
end)

-- "a,b,""c""" -> { "a", "b", "\"c\"" }
local function csv_row(line)
  local out, i = {}, 1
  while i <= #line + 1 do
    if line:sub(i, i) == '"' then
      local j, v = i + 1, {}
      while true do
        local c = line:sub(j, j)
        if c == '"' and line:sub(j + 1, j + 1) == '"' then v[#v + 1] = '"'; j = j + 2
        elseif c == '"' then j = j + 1 break
        else v[#v + 1] = c; j = j + 1 end
      end
      out[#out + 1] = table.concat(v)
      i = j + 1
    else
      local j = line:find(",", i, true) or #line + 1
      out[#out + 1] = line:sub(i, j - 1)
      i = j + 1
    end
  end
  return out
end

H.describe_corpus("tsq simulate on a real document with a machine file", function()
  local m
  before_each(function()
    m = machine("sim.lua", [[
return { variables = { PHASE = "STATERESTORE", Architecture = "X64", OSCurrentVersion = "10.0.19045",
                       IsLaptop = "FALSE" },
         software = {} }
]])
  end)
  local FIELDS = { "ActionName", "ActionOutput", "AdvertisementID", "ExecutionTime", "ExitCode", "GroupName",
    "LastStatusMsgID", "LastStatusMsgName", "PackageID", "ResourceID", "Step" }

  it("writes CSV with the SDK's field names, one row per record", function()
    local out, err, rc = tsq("simulate", CLIENT, "--machine", m, "--format", "csv", "--exit", "6.4.4=5")
    assert.equals(1, rc, err)
    local rows = {}
    for l in out:gmatch("([^\n]*)\r\n") do rows[#rows + 1] = csv_row(l) end
    assert.same(FIELDS, rows[1])
    local failed
    for i = 2, #rows do
      assert.equals(#FIELDS, #rows[i], table.concat(rows[i], "|"))
      assert.matches("^%d+$", rows[i][11])
      assert.matches("^%d%d%d%d%d%d%d%d%d%d%d%d%d%d%.000000%+000$", rows[i][4])
      if rows[i][1] == "Disable Hibernation" then failed = rows[i] end
    end
    assert.equals("5", failed[5])
    assert.equals("11135", failed[7])
    assert.equals("Apply Settings", failed[6])
    assert.equals("45", failed[11])
    assert.equals("11170", rows[#rows][7])
  end)

  it("writes JSON lines with the same records as CSV", function()
    local csv = tsq("simulate", CLIENT, "--machine", m, "--format", "csv")
    local json, err, rc = tsq("simulate", CLIENT, "--machine", m, "--format", "json")
    assert.equals(0, rc, err)
    local n = 0
    local csv_rows = {}
    for l in csv:gmatch("([^\n]*)\r\n") do csv_rows[#csv_rows + 1] = csv_row(l) end
    for l in json:gmatch("[^\n]+") do
      n = n + 1
      local pos = 0
      for _, f in ipairs(FIELDS) do -- every field, in the SDK's (alphabetical) order
        local at = l:find('"' .. f .. '":', 1, true)
        assert.truthy(at and at > pos, f .. " in " .. l)
        pos = at
      end
      local row = csv_rows[n + 1]
      assert.equals(row[11], l:match('"Step":(%d+)'))
      assert.equals(row[7], l:match('"LastStatusMsgID":(%d+)'))
      assert.equals(row[1], l:match('"ActionName":"([^"]*)"'))
    end
    assert.equals(#csv_rows - 1, n)
    assert.truthy(json:find('"LastStatusMsgID":11143', 1, true))
  end)

  it("takes --exit by name, path or index and refuses one that names no action", function()
    local by_path = tsq("simulate", CLIENT, "--machine", m, "--exit", "State Restore/Apply Settings/Disable Hibernation=7")
    local by_index = tsq("simulate", CLIENT, "--machine", m, "--exit", "6.4.4=7")
    local by_name = tsq("simulate", CLIENT, "--machine", m, "--exit", "Disable Hibernation=7")
    assert.equals(by_path, by_index)
    assert.equals(by_path, by_name)
    assert.matches("\n45%s+Apply Settings%s+Disable Hibernation%s+7%s+The task sequence execution engine failed "
      .. "executing an action\n", by_path)
    assert.matches("failed\n$", by_path)
    local _, err, rc = tsq("simulate", CLIENT, "--exit", "No such step=1")
    assert.equals(2, rc)
    assert.matches("names no action", err)
  end)

  it("simulates a timeout and an unexpected restart with --exit NAME=timeout|restart", function()
    local out, err, rc = tsq("simulate", CLIENT, "--machine", m, "--format", "csv", "--exit", "6.3=timeout",
      "--exit", "6.4.2=restart")
    assert.equals(0, rc, err)
    local rows = {}
    for l in out:gmatch("([^\n]*)\r\n") do
      local r = csv_row(l)
      if r[11] == "40" or r[11] == "43" then rows[#rows + 1] = table.concat({ r[11], r[7], r[5], r[2] }, "|") end
    end
    assert.same({ "40|11135|2147943860|the step timed out", "40|11138|2147943860|",
                  "43|11135|2147500037|the computer restarted unexpectedly during the step (0 retries)",
                  "43|11138|2147500037|" }, rows)
    local _, err2, rc2 = tsq("simulate", CLIENT, "--exit", "6.3=later")
    assert.equals(2, rc2)
    assert.matches("CODE an integer, timeout or restart", err2)
  end)

  it("lets a continue-on-error step fail without failing the run", function()
    local out, err, rc = tsq("simulate", CLIENT, "--machine", m, "--exit", "6.3=1")
    assert.equals(0, rc, err)
    assert.matches("\n40%s+State Restore%s+Opt In to CEIP and WER%s+1%s+The task sequence execution engine failed "
      .. "executing an action\n40%s+State Restore%s+Opt In to CEIP and WER%s+1%s+The task sequence execution "
      .. "engine ignored execution failure of an action\n", out)
    assert.matches("succeeded\n$", out)
  end)
end)
