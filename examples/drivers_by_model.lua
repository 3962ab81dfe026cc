-- examples/drivers_by_model.lua: one driver step per hardware model, from a table.
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local ts = require "tasksequence"
local groups = require "lib.groups"

local MODELS = {
  { model = "Latitude 7420", package = "PS100101" },
  { model = "Latitude 5430", package = "PS100102" },
  { model = "OptiPlex 7090", package = "PS100103" },
  { model = "HP EliteBook 840 G8", package = "PS100104" },
  { model = "ThinkPad T14 Gen 2", package = "PS100105" },
}

local drivers = ts.group { Name = "Drivers", Condition = ts.condition { groups.in_winpe } }
for _, m in ipairs(MODELS) do
  drivers:add(ts.ApplyDriverPackage {
    Name = m.model,
    DriverPackageID = m.package,
    Condition = ts.condition {
      ts.wmi("SELECT * FROM Win32_ComputerSystem WHERE Model = '" .. m.model .. "'"),
    },
  })
end

return ts.sequence {
  Name = "Drivers by model",
  ts.group { Name = "Install", drivers },
}
