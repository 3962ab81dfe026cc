-- examples/lib/groups.lua: groups shared by the example sequences.
-- local groups = require "lib.groups"   (the examples put their folder on package.path)
local ts = require "tasksequence"

local groups = {}

local in_winpe = ts.variable("_SMSTSInWinPE", "equals", "true")
local in_full_os = ts.variable("_SMSTSInWinPE", "equals", "false")
groups.in_winpe, groups.in_full_os = in_winpe, in_full_os

-- Gathers facts and sets the logging path; every deployment starts with it.
function groups.initialize()
  return ts.group {
    Name = "Initialize",
    Description = "Gather facts about the machine",
    ts.RunCommandLine { Name = "Gather", CommandLine = [[cscript.exe "%DeployRoot%\Scripts\ZTIGather.wsf"]] },
    ts.SetVariable { Name = "Set log path", VariableName = "SLShare", VariableValue = [[\\cm01\logs$]] },
  }
end

-- Wipes and partitions disk 0 for UEFI machines (WinPE only).
function groups.prepare_disk(script_package)
  return ts.group {
    Name = "Prepare Disk",
    Condition = ts.condition { in_winpe, ts.variable("_SMSTSBootUEFI", "equals", "true") },
    ts.RunCommandLine {
      Name = "Partition disk 0 (UEFI)",
      CommandLine = "diskpart.exe /s X:\\Deploy\\Scripts\\uefi.txt",
      PackageID = script_package,
      SupportedEnvironment = "WinPE",
    },
  }
end

-- Applications every client gets, as separate Run Command Line steps.
function groups.applications(apps)
  local g = ts.group { Name = "Install Applications" }
  for _, app in ipairs(apps) do
    g:add(ts.RunCommandLine {
      Name = "Install " .. app.name,
      CommandLine = app.command,
      PackageID = app.package,
      SuccessCodes = "0 3010",
    })
  end
  return g
end

-- Restarts into the full operating system unless already there.
function groups.restart(name)
  return ts.Reboot { Name = name or "Restart Computer", Target = "HD", Condition = ts.condition { in_winpe } }
end

return groups
