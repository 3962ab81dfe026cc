-- examples/in_place_upgrade.lua: a Windows 11 in-place upgrade with per-model steps.
--   tsq build examples/in_place_upgrade.lua -o in_place_upgrade.xml
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local ts = require "tasksequence"
local groups = require "lib.groups"
local model = groups.model

-- The models this upgrade supports, and the firmware settings step each one needs.
local MODELS = {
  { pattern = "%Latitude 74%", fix = "Dell BIOS settings", command = "cctk.exe --TpmSecurity=Enabled", package = "PS100090" },
  { pattern = "%EliteBook 8%", fix = "HP BIOS settings", command = "BiosConfigUtility64.exe /set:hp.txt", package = "PS100091" },
  { pattern = "%ThinkPad T14%", fix = "Lenovo BIOS settings", command = "ThinkBiosConfig.hta config=t14.ini", package = "PS100092" },
}

local supported, fixes = {}, {}
for i, m in ipairs(MODELS) do
  supported[i] = model(m.pattern)
  fixes[i] = ts.RunCommandLine(m.fix) {
    CommandLine = m.command, PackageID = m.package, Condition = ts.condition { model(m.pattern) },
  }
end

return ts.sequence "In-place upgrade to Windows 11" {
  ts.group "Check readiness" {
    ts.RunPowerShellScript "Check free space" {
      ScriptName = "Test-FreeSpace.ps1", PackageID = "PS100070", ExecutionPolicy = "Bypass",
    },
    ts.SetVariable "Mark unsupported model" {
      VariableName = "UnsupportedModel", VariableValue = "true",
      Condition = ts.condition { ts.none { ts.any(supported) } },
    },
  },
  ts.group "Upgrade" {
    Condition = ts.condition { ts.variable("UnsupportedModel", "notExists") },
    ts.group "Model fixes" (fixes),
    ts.UpgradeOperatingSystem "Upgrade Windows" { InstallPackageID = "PS100080", ScanOnly = false, IgnoreMessages = true },
    groups.restart("Restart after upgrade"),
  },
}
