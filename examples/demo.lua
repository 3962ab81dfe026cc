-- examples/demo.lua: a realistic deployment sequence built in Lua (make demo runs it).
-- Prints the step tree and the XML, and writes the XML to arg[1] (default build/demo.xml).
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local ts = require "tasksequence"
local groups = require "lib.groups"

local is_laptop = ts.any {
  ts.wmi "SELECT * FROM Win32_SystemEnclosure WHERE ChassisTypes = 9 OR ChassisTypes = 10",
  ts.variable("IsLaptop", "equals", "true"),
}

local seq = ts.sequence {
  Name = "Windows 11 Enterprise - Deploy",
  groups.initialize(),
  ts.group {
    Name = "Install Operating System",
    Condition = ts.condition { groups.in_winpe },
    groups.prepare_disk("PS100010"),
    ts.group {
      Name = "Apply",
      ts.ApplyOperatingSystem { Name = "Apply Windows 11", ImagePackageID = "PS100020", ImageIndex = 3,
        DestinationDisk = 0, DestinationPartition = 3 },
      ts.group {
        Name = "Drivers",
        ts.ApplyDriverPackage { Name = "Drivers - Latitude", DriverPackageID = "PS100031",
          Condition = ts.condition { ts.wmi "SELECT * FROM Win32_ComputerSystem WHERE Model LIKE '%Latitude%'" } },
        ts.ApplyDriverPackage { Name = "Drivers - OptiPlex", DriverPackageID = "PS100032",
          Condition = ts.condition { ts.all {
            ts.wmi "SELECT * FROM Win32_ComputerSystem WHERE Model LIKE '%OptiPlex%'",
            ts.none { ts.variable("SkipDrivers", "equals", "true") },
          } } },
      },
    },
    groups.restart("Restart into Windows"),
  },
  ts.group {
    Name = "Configure",
    Condition = ts.condition { groups.in_full_os },
    groups.applications {
      { name = "7-Zip", command = "msiexec /i 7z.msi /qn", package = "PS100040" },
      { name = "Office", command = "setup.exe /configure config.xml", package = "PS100041" },
    },
    ts.RunPowerShellScript { Name = "Enable BitLocker on laptops", ScriptName = "Enable-BitLocker.ps1",
      PackageID = "PS100050", ExecutionPolicy = "Bypass", Condition = ts.condition { is_laptop } },
    ts.SetVariable { Name = "Mark done", VariableName = "DeployDone", VariableValue = "true",
      ContinueOnError = true },
  },
}

local function depth(step)
  local d, p = 0, step.parent
  while p do d, p = d + 1, p.parent end
  return d
end

print(seq.Name)
for step in seq:steps() do
  local line = string.rep("  ", depth(step)) .. step.Name
  if step.Condition then line = line .. "    if " .. tostring(step.Condition) end
  print(line)
end
local xml = seq:to_xml()
print(xml)
local out = arg and arg[1] or "build/demo.xml"
assert(seq:save(out))
io.stderr:write("wrote " .. out .. "\n")
return seq
