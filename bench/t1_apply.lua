-- The T1 transformation as a `tsq apply` script (bench/run.sh times it with 1 and 2 jobs).
local ts = require "tasksequence"
return function(seq)
  for step in seq:steps() do
    if step.type == "SMS_TaskSequence_RunCommandLineAction" then
      step.CommandLine = step.CommandLine:gsub("\\\\oldserver\\", "\\\\newserver\\")
    elseif step.type == "SMS_TaskSequence_InstallApplicationAction" and not step.Condition then
      step.Condition = ts.condition { ts.variable("_SMSTSInWinPE", "equals", "false") }
    end
    if step.Name:sub(1, 7) == "Restart" then step.Enabled = false end
  end
end
