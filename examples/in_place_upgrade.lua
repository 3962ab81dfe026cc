-- examples/in_place_upgrade.lua: Windows in-place upgrade with per-model conditions.
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local ts = require "tasksequence"
local groups = require "lib.groups"

local function model(pattern)
  return ts.wmi("SELECT * FROM Win32_ComputerSystem WHERE Model LIKE '" .. pattern .. "'")
end

local supported = ts.any { model "%Latitude 74%", model "%EliteBook 8%", model "%ThinkPad T14%" }

return ts.sequence {
  Name = "In-place upgrade to Windows 11",
  ts.group {
    Name = "Check readiness",
    ts.RunPowerShellScript { Name = "Check free space", ScriptName = "Test-FreeSpace.ps1", PackageID = "PS100070",
      ExecutionPolicy = "Bypass" },
    ts.SetVariable { Name = "Mark unsupported model", VariableName = "UnsupportedModel", VariableValue = "true",
      Condition = ts.condition { ts.none { supported } } },
  },
  ts.group {
    Name = "Upgrade",
    Condition = ts.condition { ts.variable("UnsupportedModel", "notExists", "") },
    ts.UpgradeOperatingSystem { Name = "Upgrade Windows", InstallPackageID = "PS100080", ScanOnly = false,
      IgnoreMessages = true },
    ts.group {
      Name = "Model fixes",
      ts.RunCommandLine { Name = "Dell BIOS settings", CommandLine = "cctk.exe --TpmSecurity=Enabled",
        PackageID = "PS100090", Condition = ts.condition { model "%Latitude%" } },
      ts.RunCommandLine { Name = "HP BIOS settings", CommandLine = "BiosConfigUtility64.exe /set:hp.txt",
        PackageID = "PS100091", Condition = ts.condition { model "%EliteBook%" } },
    },
    groups.restart("Restart after upgrade"),
  },
}
