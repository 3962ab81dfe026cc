-- tasksequence.diff: structural differences between two sequences, by step path.
-- diff.compare(a, b) -> array of changes, each
--   { change = "added"|"removed"|"moved"|"renamed"|"changed", path =, type =,
--     from = (moved/renamed: the old path), property = (changed), old =, new = }
-- Steps are matched by path first, then by name and class anywhere (a move), then by
-- place and class when most of their own properties agree (a rename).
local diff = {}

local COMMON = { "Name", "Description", "Enabled", "ContinueOnError" }

-- Tables (object arrays) as stable text, so that equal contents compare equal.
local FLAT = "\1" -- marks such text: it is shown as it is, not quoted
local function flat(v, depth)
  if type(v) ~= "table" then return v end
  depth = depth or 0
  if depth > 16 then return "{...}" end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    local x = flat(v[k], depth + 1)
    if type(x) == "string" and x:sub(1, 1) == FLAT then x = x:sub(2)
    elseif type(x) == "string" then x = string.format("%q", x) end
    parts[#parts + 1] = (type(k) == "number" and "" or (tostring(k) .. "=")) .. tostring(x)
  end
  return FLAT .. "{" .. table.concat(parts, ", ") .. "}"
end

local function shown(v)
  if type(v) == "string" and v:sub(1, 1) == FLAT then return v:sub(2) end
  return v
end

local function snapshot(seq)
  local out, counters, names, stack = {}, {}, {}, {}
  for step in seq:steps() do
    local d, p = 0, step.parent
    while p do d, p = d + 1, p.parent end
    counters[d] = (counters[d] or 0) + 1
    for k = d + 1, #counters do counters[k] = nil end
    names[d] = step.Name or ""
    for k = d + 1, #names do names[k] = nil end
    local idx = {}
    for k = 1, d do idx[k] = tostring(counters[k] or 1) end
    local props = {}
    for _, k in ipairs(COMMON) do props[k] = step[k] end
    if step.kind ~= "group" then
      local ok, all = pcall(step.properties, step)
      if ok and type(all) == "table" then
        for k, v in pairs(all) do props[k] = flat(v) end
      end
      local okc, cmd = pcall(function() return step.command end)
      if okc and cmd ~= nil then props.command = cmd end
    end
    local c = step.Condition
    props.Condition = c ~= nil and tostring(c) or nil
    stack[d] = #out + 1
    local e = {
      kind = step.kind, type = step.type, name = step.Name or "", depth = d,
      path = table.concat(names, "/", 1, d), index = table.concat(idx, "."),
      parent = d > 1 and stack[d - 1] or 0, props = props,
    }
    e.parent_path = d > 1 and out[e.parent].path or ""
    out[#out + 1] = e
  end
  return out
end
diff.snapshot = snapshot

local function value_text(v, objects)
  if v == nil then return "nil" end
  if objects then return v end
  if type(v) == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  return tostring(v)
end

local function short(t)
  if not t or t == "" then return "step" end
  if t == "SMS_TaskSequence_Group" then return "group" end
  return (t:gsub("^SMS_TaskSequence_(.-)Action$", "%1"))
end

-- Properties every action has, mostly at their defaults: they say nothing about identity.
local GENERIC = { Name = true, Description = true, Enabled = true, ContinueOnError = true, Condition = true,
  SupportedEnvironment = true, SuccessCodes = true, Timeout = true }

-- Whether two steps at the same place could be one step renamed rather than one removed
-- and another added: groups always, actions when three quarters of their own properties
-- (the command text among them) agree.
local function alike(e, f)
  if e.kind == "group" then return true end
  local same, all, seen = 0, 0, {}
  for _, props in ipairs { e.props, f.props } do
    for k in pairs(props) do
      if not GENERIC[k] and not seen[k] then
        seen[k] = true
        all = all + 1
        if e.props[k] == f.props[k] then same = same + 1 end
      end
    end
  end
  return same * 4 >= all * 3
end

function diff.compare(a, b)
  local A, B = snapshot(a), snapshot(b)
  local ma, mb = {}, {} -- index in A -> index in B and back
  local function pair(i, j) ma[i], mb[j] = j, i end

  -- 1. same path and class (first unmatched occurrence, in order)
  local by_path = {}
  for j, e in ipairs(B) do
    local k = e.path .. "\0" .. tostring(e.type)
    by_path[k] = by_path[k] or {}
    table.insert(by_path[k], j)
  end
  for i, e in ipairs(A) do
    local l = by_path[e.path .. "\0" .. tostring(e.type)]
    if l and #l > 0 then pair(i, table.remove(l, 1)) end
  end
  -- 2. same name and class elsewhere: moved
  local by_name = {}
  for j, e in ipairs(B) do
    if not mb[j] then
      local k = e.name .. "\0" .. tostring(e.type)
      by_name[k] = by_name[k] or {}
      table.insert(by_name[k], j)
    end
  end
  for i, e in ipairs(A) do
    if not ma[i] then
      local l = by_name[e.name .. "\0" .. tostring(e.type)]
      if l and #l > 0 then pair(i, table.remove(l, 1)) end
    end
  end
  -- 3. same parent (matched), same place, same class: renamed
  for i, e in ipairs(A) do
    if not ma[i] then
      local pa = e.parent
      local pb = pa == 0 and 0 or ma[pa]
      if pb then
        local last = e.index:match("(%d+)$")
        for j, f in ipairs(B) do
          if not mb[j] and f.parent == pb and f.type == e.type and f.index:match("(%d+)$") == last
            and alike(e, f) then
            pair(i, j)
            break
          end
        end
      end
    end
  end

  local changes = {}
  local function add(c) changes[#changes + 1] = c end
  for i, e in ipairs(A) do
    if not ma[i] then add { change = "removed", path = e.path, index = e.index, type = e.type } end
  end
  -- moves: a different parent, or out of order among the siblings that kept their parent
  -- (those outside the longest run that kept its order)
  local reordered = {}
  local groups = {}
  for j, f in ipairs(B) do
    local i = mb[j]
    if i then
      local e = A[i]
      local pa = e.parent == 0 and 0 or ma[e.parent]
      if pa == f.parent then
        groups[f.parent] = groups[f.parent] or {}
        table.insert(groups[f.parent], { j = j, i = i })
      end
    end
  end
  for _, list in pairs(groups) do
    -- longest increasing subsequence of the A indices, O(n^2): sibling lists are short
    local n, len, prev = #list, {}, {}
    local best, bi = 0, nil
    for x = 1, n do
      len[x], prev[x] = 1, nil
      for y = 1, x - 1 do
        if list[y].i < list[x].i and len[y] + 1 > len[x] then len[x], prev[x] = len[y] + 1, y end
      end
      if len[x] > best then best, bi = len[x], x end
    end
    local keep = {}
    while bi do keep[bi] = true; bi = prev[bi] end
    for x = 1, n do if not keep[x] then reordered[list[x].j] = true end end
  end
  for j, f in ipairs(B) do
    local i = mb[j]
    if not i then
      add { change = "added", path = f.path, index = f.index, type = f.type }
    else
      local e = A[i]
      local pa = e.parent == 0 and 0 or ma[e.parent]
      if e.name ~= f.name then
        add { change = "renamed", path = f.path, from = e.path, old = e.name, new = f.name, type = f.type }
      end
      if pa ~= f.parent or reordered[j] then
        add { change = "moved", path = f.path, from = e.path, old = e.index, new = f.index, type = f.type }
      end
      local keys, seen = {}, {}
      for k in pairs(e.props) do if not seen[k] then seen[k] = true; keys[#keys + 1] = k end end
      for k in pairs(f.props) do if not seen[k] then seen[k] = true; keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do
        if k ~= "Name" and e.props[k] ~= f.props[k] then
          local objects = shown(e.props[k]) ~= e.props[k] or shown(f.props[k]) ~= f.props[k] or nil
          add { change = "changed", path = f.path, property = k, old = shown(e.props[k]), new = shown(f.props[k]),
            type = f.type, objects = objects }
        end
      end
    end
  end
  return changes
end

local SIGN = { added = "+", removed = "-", moved = ">", renamed = "=", changed = "~" }

function diff.format(changes, prefix)
  prefix = prefix or ""
  local out = {}
  for _, c in ipairs(changes) do
    local s
    if c.change == "changed" then
      s = string.format("~ changed %s: %s %s -> %s", c.path, c.property, value_text(c.old, c.objects), value_text(c.new, c.objects))
    elseif c.change == "moved" then
      s = string.format("> moved %s (%s) -> %s (%s)", c.from, c.old, c.path, c.new)
    elseif c.change == "renamed" then
      s = string.format("= renamed %s -> %s", c.from, c.path)
    else
      s = string.format("%s %s %s [%s]", SIGN[c.change], c.change, c.path, short(c.type))
    end
    out[#out + 1] = prefix .. s
  end
  if #out == 0 then return "" end
  return table.concat(out, "\n") .. "\n"
end

return diff
