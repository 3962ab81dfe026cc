-- The example scripts of examples/: each builds with tsq build, validates, and has the
-- structure and the per-machine behaviour it is there to show.
local ts = require "tasksequence"
local H = require "helpers"

local function build(name)
  local xml, err, rc = H.tsq("build", "examples/" .. name .. ".lua")
  assert.equals(0, rc, err)
  local seq = assert(ts.parse(xml))
  for _, p in ipairs(seq:validate()) do
    assert.are_not.equal("error", p.severity, (p.step and p.step.path or "") .. ": " .. p.message)
  end
  return seq
end

-- name -> plan state, for a machine with these variables and WMI models
local function plan(seq, vars, model)
  local env = ts.environment {
    variables = vars,
    wmi = function(_, query)
      local op, pattern = query:match("Model (%S+) '(.-)'$")
      if not op or not model then return 0 end
      if op == "=" then return model == pattern and 1 or 0 end
      local lua_pattern = "^" .. pattern:gsub("%p", "%%%0"):gsub("%%%%", ".*") .. "$"
      return model:find(lua_pattern) and 1 or 0
    end,
  }
  local out = {}
  for _, p in ipairs(assert(seq:plan(env))) do out[p.step.Name] = p.state end
  return out
end

local function names(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = s.Name end
  return out
end

describe("examples/bare_metal.lua", function()
  local seq
  setup(function() seq = build("bare_metal") end)

  it("is a named sequence of the three phases of a bare-metal deployment", function()
    assert.equals("Bare metal - Windows 11", seq.Name)
    assert.same({ "Initialize", "Install Windows", "Finish" }, names(seq:find { depth = 1 }))
    local apply = seq:find { type = "ApplyOperatingSystem" }
    assert.equals(1, #apply)
    assert.equals("PS100020", apply[1].ImagePackageID)
    assert.equals("Install Windows/Apply Windows 11 image", apply[1].path)
    assert.equals(1, #seq:find { type = "SetupWindowsAndSMS", inside = "Install Windows" })
    assert.equals(1, #seq:find { type = "Reboot", inside = "Finish" })
  end)

  it("installs in WinPE and finishes in the full OS", function()
    local pe = plan(seq, { _SMSTSInWinPE = "true", _SMSTSBootUEFI = "true" })
    assert.equals("run", pe["Apply Windows 11 image"])
    assert.equals("run", pe["Partition disk 0 (UEFI)"])
    assert.equals("skip_condition", pe["Finish"])
    local bios = plan(seq, { _SMSTSInWinPE = "true", _SMSTSBootUEFI = "false" })
    assert.equals("skip_condition", bios["Prepare Disk"])
    local os = plan(seq, { _SMSTSInWinPE = "false" })
    assert.equals("skip_condition", os["Install Windows"])
    assert.equals("run", os["Install Company Portal"])
    assert.equals("run", os["Final restart"])
  end)
end)

describe("examples/in_place_upgrade.lua", function()
  local seq
  setup(function() seq = build("in_place_upgrade") end)

  it("has one firmware step per supported model, each with its model condition", function()
    local fixes = seq:find { inside = "Upgrade/Model fixes" }
    assert.same({ "Dell BIOS settings", "HP BIOS settings", "Lenovo BIOS settings" }, names(fixes))
    for _, s in ipairs(fixes) do
      assert.matches("^wmi \"SELECT %* FROM Win32_ComputerSystem WHERE Model LIKE '%%.+%%'\"$", tostring(s.Condition))
    end
    assert.equals(1, #seq:find { type = "UpgradeOperatingSystem" })
  end)

  it("runs only the firmware step of the machine's model", function()
    local dell = plan(seq, { _SMSTSInWinPE = "false" }, "Latitude 7420")
    assert.equals("run", dell["Dell BIOS settings"])
    assert.equals("skip_condition", dell["HP BIOS settings"])
    assert.equals("skip_condition", dell["Lenovo BIOS settings"])
    assert.equals("skip_condition", dell["Mark unsupported model"])
    assert.equals("run", dell["Upgrade Windows"])
    local hp = plan(seq, { _SMSTSInWinPE = "false" }, "HP EliteBook 840 G8")
    assert.equals("skip_condition", hp["Dell BIOS settings"])
    assert.equals("run", hp["HP BIOS settings"])
  end)

  it("marks an unsupported model, and skips the upgrade once it is marked", function()
    local vm = plan(seq, { _SMSTSInWinPE = "false" }, "VMware Virtual Platform")
    assert.equals("run", vm["Mark unsupported model"])
    local marked = plan(seq, { _SMSTSInWinPE = "false", UnsupportedModel = "true" }, "VMware Virtual Platform")
    assert.equals("skip_condition", marked["Upgrade"])
  end)
end)

describe("examples/drivers_by_model.lua", function()
  local seq
  setup(function() seq = build("drivers_by_model") end)

  it("has one driver package step per model of its table", function()
    local steps = seq:find { type = "ApplyDriverPackage" }
    assert.same({ "Latitude 7420", "Latitude 5430", "OptiPlex 7090", "HP EliteBook 840 G8", "ThinkPad T14 Gen 2" },
      names(steps))
    local ids = {}
    for i, s in ipairs(steps) do
      ids[i] = s.DriverPackageID
      assert.equals("Install/Drivers/" .. s.Name, s.path)
    end
    assert.same({ "PS100101", "PS100102", "PS100103", "PS100104", "PS100105" }, ids)
  end)

  it("applies exactly the package of the machine's model, in WinPE", function()
    for _, model in ipairs { "Latitude 7420", "OptiPlex 7090", "ThinkPad T14 Gen 2" } do
      local p = plan(seq, { _SMSTSInWinPE = "true" }, model)
      for _, s in ipairs(seq:find { type = "ApplyDriverPackage" }) do
        assert.equals(s.Name == model and "run" or "skip_condition", p[s.Name], model .. ": " .. s.Name)
      end
    end
    assert.equals("skip_condition", plan(seq, { _SMSTSInWinPE = "false" }, "Latitude 7420")["Drivers"])
  end)
end)

describe("examples/demo.lua", function()
  it("writes the file it names, the same sequence it prints", function()
    local dir = H.tmpdir()
    local out, err, rc = H.tsq("run", "examples/demo.lua", dir .. "/demo.xml")
    assert.equals(0, rc, err)
    local printed = out:match("\n(<sequence .*)$")
    assert.is_not_nil(printed)
    assert.equals(printed, H.read(dir .. "/demo.xml") .. "\n")
    H.rm_rf(dir)
  end)
end)
