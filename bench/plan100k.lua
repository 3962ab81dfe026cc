-- seq:plan over the 100,000-step document from Lua, facts given by Lua functions; the
-- first plan compiles every condition, the next ones reuse them. Prints the milliseconds.
-- usage: tsq run bench/plan100k.lua BIG.xml
local ts = require "tasksequence"
local seq = assert(ts.load(assert(arg[1], "usage: plan100k.lua BIG.xml")))
local env = ts.environment {
  variables = { OSDComputerName = "pc01", _SMSTSInWinPE = "false" },
  wmi = function(_, query) return query:find("Battery", 1, true) and 1 or 0 end,
  files = function(path) return path:find("System32", 1, true) and { Version = "10.0.22621.1" } or nil end,
  folders = function() return nil end,
  registry = function() return nil end,
  software = function() return nil end,
}
for round = 1, 3 do
  local t = os.clock()
  local plan = seq:plan(env)
  print(string.format("seq:plan of %d steps (%s): %.1f ms", #plan, round == 1 and "first" or "again",
    (os.clock() - t) * 1000))
end
