-- host_policy.lua - the site policy that examples/host_lua.c hands its sequence to.
--
-- Called with what the host pushed: (seq, machine, pe_check) = the sequence the host
-- built in C, an environment whose WMI and software facts a C provider answers, and a
-- condition the host built in C. Edits the sequence, plans and runs it with the host's C
-- handler (require "host".install), and returns (seq, the run's environment, laptop) for
-- the host to read back with ltsq_checknode / ltsq_checkenv / ltsq_checkcond.
local seq, machine, pe_check = ...
local ts = require "tasksequence"
local host = require "host"

local apps = assert(seq:find { name = "Applications" }[1], "the host's sequence has no Applications group")
apps.Condition = pe_check                      -- a copy: the host keeps its own

-- skip 7-Zip where any version of it is installed (asks the C provider's software fact)
local zip = apps[1]
zip.Condition = ts.condition [[not software any "{23170F69-40C1-2702-0000-000004000000}"]]

-- Office is allowed to fail, under a clearer name
local office = apps[2]
office.Name = "Microsoft 365 Apps"
office.ContinueOnError = true

-- a step of our own, for laptops only (asks the C provider's WMI fact)
local laptop = ts.condition [[wmi "SELECT * FROM Win32_Battery"]]
apps:add(ts.RunCommandLine "Battery firmware" {
  CommandLine = "fwupdate.exe /battery /quiet",
  Condition = laptop,
})

for _, e in ipairs(seq:plan(machine)) do
  print(("plan %-15s %s%s"):format(e.state, e.step.Name, e.reason and " (" .. e.reason .. ")" or ""))
end

local result = seq:run { env = machine, handlers = { RunCommandLine = host.install }, PackageID = "HST00002" }
for _, r in ipairs(result.records) do
  if r.ActionName ~= "" then
    print(("record %2d %5d %-20s exit %d %s"):format(r.Step, r.LastStatusMsgID, r.ActionName, r.ExitCode, r.ActionOutput))
  end
end
print("run " .. (result.succeeded and "succeeded" or "failed"))

return seq, result.env, laptop                -- the run changed a copy of machine
