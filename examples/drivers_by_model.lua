-- examples/drivers_by_model.lua: one driver package step per hardware model, from a table.
--   tsq build examples/drivers_by_model.lua -o drivers_by_model.xml
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

-- the table form of a constructor: Name among the other properties
local drivers = ts.group { Name = "Drivers", Condition = ts.condition { groups.in_winpe } }
for _, m in ipairs(MODELS) do
  drivers:add(ts.ApplyDriverPackage {
    Name = m.model,
    DriverPackageID = m.package,
    Condition = ts.condition { groups.model(m.model) },
  })
end

return ts.sequence "Drivers by model" {
  ts.group "Install" { drivers },
}
