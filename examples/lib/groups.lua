-- examples/lib/groups.lua: groups and conditions shared by the example sequences.
-- local groups = require "lib.groups"   (the examples put their folder on package.path)
local ts = require "tasksequence"

local groups = {}

groups.in_winpe = ts.variable("_SMSTSInWinPE", "equals", "true")
groups.in_full_os = ts.variable("_SMSTSInWinPE", "equals", "false")

-- A WMI test on the hardware model: exact name, or a LIKE pattern when it has a %.
function groups.model(name)
  local op = name:find("%", 1, true) and "LIKE" or "="
  return ts.wmi(("SELECT * FROM Win32_ComputerSystem WHERE Model %s '%s'"):format(op, name))
end

-- Gathers facts and sets the logging path; every deployment starts with it.
function groups.initialize()
  return ts.group "Initialize" {
    Description = "Gather facts about the machine",
    ts.RunCommandLine "Gather" { CommandLine = [[cscript.exe "%DeployRoot%\Scripts\ZTIGather.wsf"]] },
    ts.SetVariable "Set log path" { VariableName = "SLShare", VariableValue = [[\\cm01\logs$]] },
  }
end

-- Wipes and partitions disk 0 for UEFI machines (WinPE only).
function groups.prepare_disk(script_package)
  return ts.group "Prepare Disk" {
    Condition = ts.condition { groups.in_winpe, ts.variable("_SMSTSBootUEFI", "equals", "true") },
    ts.RunCommandLine "Partition disk 0 (UEFI)" {
      CommandLine = [[diskpart.exe /s X:\Deploy\Scripts\uefi.txt]],
      PackageID = script_package,
      SupportedEnvironment = "WinPE",
    },
  }
end

-- Applications every client gets, one Run Command Line step each, from a table of
-- { name =, command =, package = }.
function groups.applications(apps)
  local g = ts.group "Install Applications" {}
  for _, app in ipairs(apps) do
    g:add(ts.RunCommandLine("Install " .. app.name) {
      CommandLine = app.command,
      PackageID = app.package,
      SuccessCodes = "0 3010",
    })
  end
  return g
end

-- A restart into the installed operating system; condition is optional.
function groups.restart(name, condition)
  return ts.Reboot(name or "Restart Computer") { Target = "HD", Condition = condition }
end

return groups
