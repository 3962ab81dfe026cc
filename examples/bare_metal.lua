-- examples/bare_metal.lua: a Windows 11 bare-metal deployment.
--   tsq build examples/bare_metal.lua -o bare_metal.xml
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local ts = require "tasksequence"
local groups = require "lib.groups"

return ts.sequence "Bare metal - Windows 11" {
  groups.initialize(),
  ts.group "Install Windows" {
    Condition = ts.condition { groups.in_winpe },
    groups.prepare_disk("PS100010"),
    ts.ApplyOperatingSystem "Apply Windows 11 image" {
      ImagePackageID = "PS100020", ImageIndex = 1, DestinationDisk = 0, DestinationPartition = 3,
    },
    ts.ApplyWindowsSettings "Apply Windows Settings" {
      RegisteredOrgName = "Contoso", RegisteredUserName = "Contoso IT", TimeZone = "W. Europe Standard Time",
    },
    ts.SetupWindowsAndSMS "Setup Windows and ConfigMgr" {},
  },
  ts.group "Finish" {
    Condition = ts.condition { groups.in_full_os },
    groups.applications {
      { name = "Company Portal", command = "install-portal.cmd", package = "PS100060" },
    },
    groups.restart("Final restart"),
  },
}
