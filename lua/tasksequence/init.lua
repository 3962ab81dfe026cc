-- tasksequence: ConfigMgr / MDT task sequences from Lua.
--
--   local ts = require "tasksequence"
--   local seq = ts.sequence "Deploy" {
--     ts.group "Prepare" {
--       ts.RunCommandLine "Say hello" { CommandLine = "cmd /c echo hello" },
--     },
--   }
--
-- tasksequence.core is re-exported but for its plumbing (core.constructor, core.move);
-- this file adds the declarative constructors (one per catalogued action class, generated
-- from the catalogue) and the selector methods and edits of tasksequence.query.
local core = require "tasksequence.core"

local M = {}
for k, v in pairs(core) do M[k] = v end
M.core = core
-- the binding's plumbing stays in ts.core: core.constructor makes the class constructors
-- below, core.move is the primitive under step:move_to (its index counts the step still
-- in place, move_to's does not)
M.constructor, M.move = nil, nil

local step_mt = getmetatable(core.new_group(""))

-- ------------------------------------------------------------------ catalogue

local classes, by_name = {}, {}
for _, c in ipairs(core.classes()) do
  if c.display then -- action classes; the base class and embedded helpers have no display name
    classes[#classes + 1] = c
    by_name[c.name], by_name[c.short_name] = c, c
  end
end
M.action_classes = classes

local function distance(a, b)
  a, b = a:lower(), b:lower()
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function suggest(name)
  local best, bd = nil, math.huge
  for _, c in ipairs(classes) do
    for _, n in ipairs { c.short_name, c.name } do
      local d = distance(name, n)
      if d < bd then best, bd = c.short_name, d end
    end
  end
  if best and bd <= math.max(2, #name // 3) then return (" (did you mean '%s'?)"):format(best) end
  return ""
end

-- ------------------------------------------------------------------ declarative application

local function where(step)
  return tostring(step)
end

-- an error message without its position and without luaL_argerror's wrapping
local function clean(err)
  local msg = tostring(err):gsub("^[^\n]-:%d+: ", ""):gsub("^bad argument #%d+ to '[^']*' %((.*)%)$", "%1")
  return msg
end

local function fail(step, err, level)
  local msg = clean(err)
  local w = where(step)
  if msg:sub(1, #w) ~= w then msg = w .. ": " .. msg end
  error(msg, level + 1)
end

-- Applies a constructor table to step (core.apply: string keys are properties, Name first
-- then in name order, with the same rules as assignment; the array part are children).
-- Raises at `level` naming the step.
local core_apply = core.apply
local function apply(step, t, level)
  level = level + 1
  if type(t) ~= "table" then
    error(("%s: table expected, got %s"):format(where(step), type(t)), level)
  end
  local ok, err = pcall(core_apply, step, t)
  if not ok then fail(step, err, level) end
  return step
end
M.apply = function(step, t)
  local r = apply(step, t, 2)
  return r
end

-- step "name" renames, step { ... } applies: makes the curried forms work
--   ts.RunCommandLine "x" { ... }, ts.action "BDD_Gather" "x" { ... }
step_mt.__call = function(self, arg)
  if type(arg) == "string" then
    local ok, err = pcall(function() self.Name = arg end)
    if not ok then error(err, 2) end
    return self
  end
  local r = apply(self, arg, 2)
  return r
end

-- Constructor body shared by sequence, group and action: f(arg) with a name or a table.
local function construct(step, arg, level)
  if arg == nil then return step end
  if type(arg) == "string" then
    step.Name = arg
    return step
  end
  if type(arg) ~= "table" then
    error(("bad argument #1 to constructor (string or table expected, got %s)"):format(type(arg)), level + 1)
  end
  local r = apply(step, arg, level + 1)
  return r
end

function M.sequence(arg)
  local r = construct(core.new_sequence(), arg, 2)
  return r
end

function M.group(arg)
  local r = construct(core.new_group(""), arg, 2)
  return r
end

local function new_action(class, level)
  if type(class) ~= "string" then
    error(("bad argument #1 to 'action' (class name expected, got %s)"):format(type(class)), level + 1)
  end
  if not by_name[class] and not class:find("_", 1, true) then
    -- uncatalogued classes are custom ones ("BDD_Gather"): a bare word is a misspelling
    error(("unknown action class '%s'%s"):format(class, suggest(class)), level + 1)
  end
  return core.new_action(class)
end

-- ts.action(class [, props | name])
function M.action(class, arg)
  local r = construct(new_action(class, 2), arg, 2)
  return r
end

-- one constructor per catalogued class: ts.RunCommandLine { ... } / ts.RunCommandLine "x" { ... }
-- (core.constructor: made and applied in one C call, errors raised through fail)
for _, c in ipairs(classes) do
  M[c.short_name] = core.constructor(c.name, fail)
end

-- ------------------------------------------------------------------ XML to Lua

-- seq:to_lua(): a script that rebuilds the document (tasksequence.to_lua)
core.step_methods.to_lua = function(seq) return require("tasksequence.to_lua").from_seq(seq) end

-- ------------------------------------------------------------------ query methods

local query = require "tasksequence.query"
local methods = core.step_methods
for _, n in ipairs { "insert_before", "insert_after", "move_up", "move_down", "replace", "unwrap",
                     "find", "rename", "set_all" } do
  methods[n] = query[n]
end
methods.move_to = query.move_to -- a group or a path; index is where the step ends up
M.wrap = function(steps, name) return query.wrap(M, steps, name) end

-- ------------------------------------------------------------------ unknown names

setmetatable(M, {
  __index = function(_, k)
    if type(k) == "string" and k:match("^%u") then
      error(("unknown action class '%s'%s"):format(k, suggest(k)), 2)
    end
    return nil
  end,
})

return M
