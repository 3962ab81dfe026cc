-- examples/bare_metal.lua: Windows bare-metal deployment (tsq build examples/bare_metal.lua).
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local ts = require "tasksequence"
local groups = require "lib.groups"

return ts.sequence {
  Name = "Bare metal - Windows 11",
  groups.initialize(),
  ts.group {
    Name = "Install Windows",
    Condition = ts.condition { groups.in_winpe },
    groups.prepare_disk("PS100010"),
    ts.ApplyOperatingSystem { Name = "Apply Windows 11 image", ImagePackageID = "PS100020", ImageIndex = 1,
      DestinationDisk = 0, DestinationPartition = 3 },
    ts.ApplyWindowsSettings { Name = "Apply Windows Settings", RegisteredOrgName = "Contoso", RegisteredUserName = "Contoso IT",
      TimeZone = "W. Europe Standard Time" },
    ts.SetupWindowsAndSMS { Name = "Setup Windows and ConfigMgr" },
  },
  ts.group {
    Name = "Finish",
    groups.applications { { name = "Company Portal", command = "install-portal.cmd", package = "PS100060" } },
    groups.restart("Final restart"),
  },
}
