-- Builds a 100,000-step sequence in Lua and writes it; prints the seconds taken.
-- usage: tsq run bench/build100k.lua [OUT.xml] [STEPS]
local ts = require "tasksequence"
local out = arg[1] or os.tmpname()
local steps = tonumber(arg[2]) or 100000
local t0 = os.clock()
local seq = ts.sequence "Bench"
local g
for i = 1, steps do
  if i % 50 == 1 then
    g = ts.group { Name = "Group " .. (i // 50 + 1) }
    seq:add(g)
  end
  local k = i % 4
  if k == 0 then
    g:add(ts.RunCommandLine { Name = "Run " .. i, CommandLine = "cmd.exe /c echo " .. i })
  elseif k == 1 then
    g:add(ts.SetVariable { Name = "Set " .. i, VariableName = "V" .. i, VariableValue = tostring(i) })
  elseif k == 2 then
    local s = ts.RunCommandLine { Name = "Cond " .. i, CommandLine = "x.exe" }
    s.Condition = ts.condition { ts.variable("_SMSTSInWinPE", "equals", "false") }
    g:add(s)
  else
    g:add(ts.Reboot { Name = "Restart " .. i, Target = "HD" })
  end
end
local t1 = os.clock()
assert(seq:save(out))
local t2 = os.clock()
print(string.format("build %d steps in Lua: %.3f s; write: %.3f s; total %.3f s", steps, t1 - t0, t2 - t1, t2 - t0))
if not arg[1] then os.remove(out) end
