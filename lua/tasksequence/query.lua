-- tasksequence.query: the selector vocabulary of find, and tree edits written on top of
-- the binding's add/remove/clone. tasksequence (init.lua) puts them in the step methods
-- and ts.wrap.
--
-- Selectors (every key given must hold):
--   type = "RunCommandLine" | "SMS_TaskSequence_RunCommandLineAction" | "group"
--   kind = "group" | "action"
--   name = "exact name", name_like = "Lua pattern"
--   enabled = true|false, has_condition = true|false
--   mentions = "VARNAME"      its condition mentions that variable (case-insensitive)
--   depth = n                 top-level steps are at depth 1
--   inside = "group name" | "A/B" | "3.2"   below a group so named or at that path
--   path = "Install/Drivers/Dell 7420" | "3.2.1"
--   AnyPascalCaseProperty = value   (PackageID = "PS100012", CommandLine = ..., Enabled = ...)
-- A string selector is a name or a path; a function is a predicate(step).
local query = {}

local core = require "tasksequence.core"

-- Full class name for a short or full one, from the catalogue ("SubTasksequence" has no
-- "Action" suffix); names the catalogue does not know are kept as given.
local function full_type(t)
  if t == nil then return nil end
  if t == "group" or t == "Group" then return "SMS_TaskSequence_Group" end
  local c = core.class(t)
  if c then return c.name end
  if t:find("_", 1, true) then return t end
  return "SMS_TaskSequence_" .. t .. "Action"
end
query.full_type = full_type

local function depth_of(step) return step.depth end -- the core's tsq_node_depth

-- Direct child steps of a group or sequence, in order.
function query.children(group)
  local out = {}
  for c in group:children() do out[#out + 1] = c end
  return out
end

-- "Install/Drivers/Dell 7420" and "1.2.1": the core computes both (step.path, step.index_path).
function query.path(step) return step.path end
function query.index_path(step) return step.index_path end

local function at_path(step, p)
  if p:match("^[%d.]+$") then return query.index_path(step) == p end
  return query.path(step) == p
end

local function mentions(step, var)
  local c = step.Condition
  if c == nil then return false end
  local text = tostring(c):lower()
  local v = var:lower():gsub("%p", "%%%0")
  return text:find("%f[%w_]" .. v .. "%f[^%w_]") ~= nil
end

local SPECIAL = {}

function SPECIAL.type(step, v)
  if v == "group" or v == "Group" then return step.kind == "group" end
  return step.type == full_type(v) or step.type == v
end
function SPECIAL.kind(step, v) return step.kind == v end
function SPECIAL.name(step, v) return step.Name == v end
function SPECIAL.name_like(step, v) return (step.Name or ""):find(v) ~= nil end
function SPECIAL.enabled(step, v) return (step.Enabled ~= false) == v end
function SPECIAL.has_condition(step, v) return (step.Condition ~= nil) == v end
function SPECIAL.mentions(step, v) return mentions(step, v) end
function SPECIAL.depth(step, v) return depth_of(step) == v end
function SPECIAL.path(step, v) return at_path(step, v) end
function SPECIAL.inside(step, v)
  local p = step.parent
  while p and p.parent do
    if p.Name == v or at_path(p, v) then return true end
    p = p.parent
  end
  return false
end

local function prop_equal(step, k, want)
  local ok, got = pcall(function() return step[k] end)
  if not ok then return false end
  if got == want then return true end
  if got == nil or want == nil then return false end
  return tostring(got) == tostring(want)
end

-- A predicate for a selector (table, string or function).
function query.matcher(sel)
  local t = type(sel)
  if t == "function" then return sel end
  if t == "string" then
    return function(step) return step.Name == sel or at_path(step, sel) end
  end
  if t ~= "table" then error("bad selector: table, string or function expected, got " .. t, 3) end
  for k in pairs(sel) do
    if type(k) ~= "string" or not (SPECIAL[k] or k:match("^%u")) then
      error("bad selector key '" .. tostring(k) .. "' (type, kind, name, name_like, enabled, has_condition, "
        .. "mentions, depth, inside, path or a PascalCase property)", 3)
    end
  end
  return function(step)
    for k, v in pairs(sel) do
      local f = SPECIAL[k]
      if f then
        if not f(step, v) then return false end
      elseif not prop_equal(step, k, v) then
        return false
      end
    end
    return true
  end
end

function query.find(group, sel)
  local m = query.matcher(sel)
  local out = {}
  for s in group:steps() do
    if m(s) then out[#out + 1] = s end
  end
  return out
end

-- ------------------------------------------------------------------ edits

local function need_parent(step, what)
  local p = step.parent
  if not p then error(what .. ": the step has no parent", 3) end
  return p, step.index -- from where the core last looked: a loop of moves walks no group
end

function query.insert_before(step, new)
  local p, i = need_parent(step, "insert_before")
  return p:add(new, i)
end

function query.insert_after(step, new)
  local p, i = need_parent(step, "insert_after")
  return p:add(new, i + 1)
end

function query.move_up(step)
  local p, i = need_parent(step, "move_up")
  if i > 1 then
    step:remove()
    p:add(step, i - 1)
  end
  return step
end

function query.move_down(step)
  local p, i = need_parent(step, "move_down")
  if i < #p then
    step:remove()
    p:add(step, i + 1)
  end
  return step
end

-- The binding's move, one call for a step in place or elsewhere (core.move; step:move_to
-- is query.move_to).
local c_move = core.move

-- Moves step under `dest` (a group, or a path/name of one in the same sequence) so that it
-- ends up at index among dest's steps (default: last).
function query.move_to(step, dest, index)
  if type(dest) == "string" then
    local root = step.root
    local found = query.find(root, { kind = "group", path = dest })
    if #found == 0 then found = query.find(root, { kind = "group", name = dest }) end
    if #found == 0 then error("move_to: no group '" .. dest .. "'", 2) end
    dest = found[1]
  end
  local p = dest
  while p do
    if rawequal(p, step) or p == step then error("move_to: a group can not move into itself", 2) end
    p = p.parent
  end
  local n = dest.count
  local here = step.parent == dest
  if here then n = n - 1 end
  if index == nil then index = n + 1 end
  if math.type(index) ~= "integer" or index < 1 or index > n + 1 then
    error(string.format("move_to: index %s out of range 1..%d", tostring(index), n + 1), 2)
  end
  -- the core inserts before the step now at index, counted with step still in place
  if here and step.index <= index then index = index + 1 end
  return c_move(step, dest, index)
end

function query.replace(step, new)
  local p, i = need_parent(step, "replace")
  step:remove()
  p:add(new, i)
  return new
end

-- Moves the group's steps to its place in its parent and removes it; returns them.
function query.unwrap(group)
  local p, i = need_parent(group, "unwrap")
  local kids = query.children(group)
  group:remove()
  for k, c in ipairs(kids) do
    c:remove()
    p:add(c, i + k - 1)
  end
  return kids
end

-- Puts steps (siblings, in order) into a new group named name at the first one's place.
function query.wrap(ts, steps, name)
  if #steps == 0 then error("wrap: no steps", 2) end
  local p, i = need_parent(steps[1], "wrap")
  local g = ts.group { Name = name }
  p:add(g, i)
  for _, s in ipairs(steps) do
    s:remove()
    g:add(s)
  end
  return g
end

function query.rename(group, fn)
  local n = 0
  for s in group:steps() do
    local new = fn(s.Name, s)
    if new ~= nil and new ~= s.Name then
      s.Name = new
      n = n + 1
    end
  end
  return n
end

function query.set_all(group, sel, prop, value)
  local found = query.find(group, sel)
  for _, s in ipairs(found) do s[prop] = value end
  return #found
end

return query
