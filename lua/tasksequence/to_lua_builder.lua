-- tasksequence.to_lua_builder: the `ts` that scripts written by tsq to-lua run with
-- (tasksequence.to_lua.builder). Its constructors describe a document as tables; the
-- builder renders the description as XML in the document's layout and parses that with
-- ts.parse, so a script's result is a real sequence. tasksequence.to_lua uses the same
-- rendering to check, while it writes a script, that the script gives the document back.
local M = {}

local real -- the tasksequence module, loaded on first use (it requires this file's users)
local function ts_real()
  real = real or require "tasksequence"
  return real
end

local X = require "tasksequence.to_lua_xml"
local P = require "tasksequence.to_lua_package"
local decode, parse_xml, nl_norm, attr_value, elements = X.decode, X.parse, X.nl_norm, X.attr_value, X.elements
local MARK = X.MARK

-- ------------------------------------------------------------------ XML writing

local esc_text = X.esc_text
local function esc_attr(s)
  return (s:gsub('[&<>"\r\n\t]', { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["\r"] = "&#xD;", ["\n"] = "&#xA;", ["\t"] = "&#x9;" }))
end

-- ------------------------------------------------------------------ the builder

local ALIAS = { -- PascalCase name in scripts -> XML attribute of steps and groups
  Name = "name", Description = "description", SupportedEnvironment = "runIn", Timeout = "timeout",
  SuccessCodes = "successCodeList", RetryCount = "retryCount", RunFromNet = "runFromNet",
}
local INVERT = { Enabled = "disable" }
local BOOL = { ContinueOnError = "continueOnError", RunFromNet = "runFromNet" }
local ATTR_ORDER = { "type", "name", "description", "disable", "continueOnError", "expand", "successCodeList",
  "runIn", "timeout", "retryCount", "runFromNet", "startIn" }
local RESERVED = { Condition = true, command = true, _vars = true, _hidden = true, _order = true, _cond_at = true,
  _element = true, type = true, Enabled = true, ContinueOnError = true }

local RAW_MT = { __name = "tasksequence.raw" }
local STEP_MT = { __name = "tasksequence.step description" }
local COND_MT = { __name = "tasksequence.condition text" }

local B = {}
M.builder = setmetatable(B, { __index = function(_, k)
  if type(k) == "string" and k:match("^%u") then
    local ok, mod = pcall(ts_real)
    local v
    if ok then
      local okv, val = pcall(function() return mod[k] end)
      if okv then v = val end
    end
    if v ~= nil and type(v) ~= "function" then return v end
    -- a class constructor by short name: ts.RunCommandLine "Name" { ... }
    return function(name) return B.action("SMS_TaskSequence_" .. k .. "Action")(name) end
  end
  return ts_real()[k]
end })

function B.raw(xml) return setmetatable({ xml = xml }, RAW_MT) end
B.bytes = P.bytes -- ts.bytes [[base64]]: a uint8 array field of the package (the icon)
function B.condition(text)
  if type(text) == "string" then return setmetatable({ text = text }, COND_MT) end
  return ts_real().condition(text)
end

local function describe(kind, element, type_, name)
  return function(t)
    if type(t) ~= "table" then error(element .. " \"" .. tostring(name) .. "\": a table expected", 2) end
    return setmetatable({ kind = kind, element = t._element or element, type = type_, name = name, t = t }, STEP_MT)
  end
end
function B.group(name) return describe("group", "group", nil, name) end
function B.action(type_) return function(name) return describe("action", "step", type_, name) end end
function B.step(name) return describe("action", "step", nil, name) end

local function bool_text(v) return v and "true" or "false" end

-- The catalogue of a class: property -> { variable =, hidden =, order = }, or {}.
local catalogue_cache = {}
local function catalogue(type_)
  if not type_ then return {} end
  local c = catalogue_cache[type_]
  if c then return c end
  c = {}
  local ok, mod = pcall(ts_real)
  local classes = ok and mod.action_classes or {}
  for _, cls in ipairs(classes) do
    if cls.name == type_ then
      for i, p in ipairs(cls.properties or {}) do
        c[p.name] = { variable = p.variable, hidden = p.hidden == true, order = i }
      end
    end
  end
  catalogue_cache[type_] = c
  return c
end
M.catalogue = catalogue

-- Whether table key k of a step of class type_ names a variable (else an attribute or ours).
local function is_var_key(cat, k)
  if type(k) ~= "string" or not k:match("^%u") or RESERVED[k] or INVERT[k] then return false end
  if ALIAS[k] or BOOL[k] then return cat[k] ~= nil and cat[k].variable ~= nil end
  return true
end

-- The default order of variables: catalogue order, then by name.
local function default_order(cat, keys)
  table.sort(keys, function(a, b)
    local x, y = cat[a] and cat[a].order, cat[b] and cat[b].order
    if x and y then return x < y end
    if x or y then return x ~= nil end
    return a < b
  end)
  return keys
end

-- The XML attributes of a step description, in a stable order.
local function step_attrs(d)
  local t, a = d.t, {}
  if d.type then a.type = d.type end
  if d.name then a.name = d.name end
  local varset = d.varset or {}
  for k, v in pairs(t) do
    if type(k) == "string" and not RESERVED[k] and ALIAS[k] and not varset[k] then
      a[ALIAS[k]] = BOOL[k] and type(v) == "boolean" and bool_text(v) or tostring(v)
    elseif type(k) == "string" and k:match("^%l") and not RESERVED[k] then
      a[k] = tostring(v)
    end
  end
  if t.Enabled ~= nil then a.disable = bool_text(not t.Enabled) end
  if t.ContinueOnError ~= nil then a.continueOnError = bool_text(t.ContinueOnError) end
  local keys, seen = {}, {}
  for _, k in ipairs(ATTR_ORDER) do if a[k] then keys[#keys + 1] = k; seen[k] = true end end
  local rest = {}
  for k in pairs(a) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = " " .. k .. '="' .. esc_attr(a[k]) .. '"' end
  return table.concat(out)
end

-- Variables of an action: list of { name, key, has_property }.
local function parse_vars_spec(spec)
  local vars = {}
  for tok in spec:gmatch("%S+") do
    local name, key = tok:match("^(.-)=(.*)$")
    if not name then vars[#vars + 1] = { tok, tok, true }
    elseif key == "" then vars[#vars + 1] = { name, name, false }
    else vars[#vars + 1] = { name, key, true } end
  end
  return vars
end

-- Variables of an action: list of { name, key, has_property }, from _vars, else the
-- document's usual list for the class (layout.classes), else the catalogue.
local function step_vars(t, type_, L)
  local cat = catalogue(type_)
  if t._vars then return parse_vars_spec(t._vars), true end
  local vars, seen = {}, {}
  local usual = L and L.classes and L.classes[type_ or ""]
  if usual and usual.vars then
    for _, v in ipairs(parse_vars_spec(usual.vars)) do
      if t[v[2]] ~= nil and is_var_key(cat, v[2]) then
        vars[#vars + 1] = v
        seen[v[2]] = true
      end
    end
  end
  local keys = {}
  for k in pairs(t) do
    if is_var_key(cat, k) and not seen[k] then keys[#keys + 1] = k end
  end
  default_order(cat, keys)
  for _, k in ipairs(keys) do vars[#vars + 1] = { cat[k] and cat[k].variable or k, k, true } end
  return vars, #vars > 0
end

-- XML text of a real condition object, via a scratch sequence of the real module.
local function condition_xml(cond)
  local mod = ts_real()
  local c = cond
  if getmetatable(cond) == COND_MT then c = mod.condition(cond.text) end
  local s = mod.sequence {}
  local g = mod.group { Name = "c" }
  g.Condition = c
  s:add(g)
  local tree = parse_xml(s:to_xml())
  local function find(el)
    for _, k in ipairs(el.kids or {}) do
      if k.tag == "condition" then return k end
      if k.tag then local r = find(k); if r then return r end end
    end
  end
  local found = find(tree)
  if not found then error("the condition has no XML form") end
  return found
end

-- Renders a parsed element anew in the layout (used for conditions from the core).
local function render_tree(el, L, depth, out)
  out[#out + 1] = "<" .. el.tag
  for _, a in ipairs(el.attrs) do out[#out + 1] = " " .. a[1] .. '="' .. esc_attr(attr_value(a[2])) .. '"' end
  local kids = elements(el)
  if #kids == 0 then
    local text = {}
    for _, k in ipairs(el.kids) do
      if k.kind == "text" then text[#text + 1] = decode(nl_norm(k.text)) elseif k.kind == "cdata" then text[#text + 1] = k.text end
    end
    out[#out + 1] = ">" .. esc_text(table.concat(text)) .. "</" .. el.tag .. ">"
    return
  end
  out[#out + 1] = ">"
  for _, k in ipairs(kids) do
    out[#out + 1] = L.nl .. (L.base or "") .. string.rep(L.indent, depth + 1)
    render_tree(k, L, depth + 1, out)
  end
  out[#out + 1] = L.nl .. (L.base or "") .. string.rep(L.indent, depth) .. "</" .. el.tag .. ">"
end

local render_step

local function render_condition(c, L, depth, out)
  if getmetatable(c) == RAW_MT then out[#out + 1] = nl_norm(c.xml); return end
  render_tree(condition_xml(c), L, depth, out)
end

local function render_children(list, L, depth, out)
  for _, item in ipairs(list) do
    out[#out + 1] = L.nl .. (L.base or "") .. string.rep(L.indent, depth + 1)
    item(depth + 1)
  end
end

render_step = function(d, L, depth, out)
  if getmetatable(d) == RAW_MT then out[#out + 1] = nl_norm(d.xml); return end
  if getmetatable(d) ~= STEP_MT then
    -- a step object of the real module (a user's addition): its XML as the module writes it
    local s = ts_real().sequence {}
    s:add(d:clone())
    local tree = parse_xml(s:to_xml())
    local seqel = elements(tree)[1]
    render_tree(elements(seqel)[1], L, depth, out)
    return
  end
  local t = d.t
  local vars, has = {}, false
  if d.kind ~= "group" then
    vars, has = step_vars(t, d.type, L)
    d.varset = {}
    for _, v in ipairs(vars) do d.varset[v[2]] = true end
  end
  out[#out + 1] = "<" .. d.element .. step_attrs(d)
  local items, raws = {}, {}
  for _, v in ipairs(t) do
    if d.kind == "group" then
      items[#items + 1] = function(dd) render_step(v, L, dd, out) end
    else
      raws[#raws + 1] = v
    end
  end
  if d.kind == "group" then
    if t.Condition then
      table.insert(items, (t._cond_at or 0) + 1, function(dd) render_condition(t.Condition, L, dd, out) end)
    end
  else
    local parts = {}
    parts.C = t.Condition and function(dd) render_condition(t.Condition, L, dd, out) end
    parts.A = t.command and function() out[#out + 1] = "<action>" .. esc_text(t.command) .. "</action>" end
    parts.V = has and function(dd)
      if #vars == 0 then out[#out + 1] = "<defaultVarList />"; return end
      out[#out + 1] = "<defaultVarList>"
      local hid = {}
      if t._hidden then
        for k in t._hidden:gmatch("%S+") do hid[k] = true end
      else
        local usual = L.classes and L.classes[d.type or ""]
        if usual and usual.hidden then
          for k in usual.hidden:gmatch("%S+") do hid[k] = true end
        else
          local cat = catalogue(d.type)
          for _, v in ipairs(vars) do if cat[v[2]] and cat[v[2]].hidden then hid[v[2]] = true end end
        end
      end
      for _, v in ipairs(vars) do
        local val = t[v[2]]
        if type(val) == "boolean" then val = bool_text(val) end
        out[#out + 1] = L.nl .. (L.base or "") .. string.rep(L.indent, dd + 1) .. '<variable name="' .. esc_attr(v[1]) .. '"'
          .. (v[3] and (' property="' .. esc_attr(v[2]) .. '"') or "") .. (hid[v[2]] and ' hidden="true"' or "") .. ">" .. esc_text(val == nil and "" or tostring(val)) .. "</variable>"
      end
      out[#out + 1] = L.nl .. (L.base or "") .. string.rep(L.indent, dd) .. "</defaultVarList>"
    end
    local order = t._order or L.step_order
    local r = 0
    for tok in order:gmatch("%a") do
      if tok == "R" then
        r = r + 1
        local v = raws[r]
        if v then items[#items + 1] = function() out[#out + 1] = nl_norm(v.xml) end end
      elseif parts[tok] then
        items[#items + 1] = parts[tok]
        parts[tok] = nil
      end
    end
    for _, tok in ipairs { "C", "A", "V" } do if parts[tok] then items[#items + 1] = parts[tok] end end
    for k = r + 1, #raws do local v = raws[k]; items[#items + 1] = function() out[#out + 1] = nl_norm(v.xml) end end
  end
  if #items == 0 then
    out[#out + 1] = " />"
    return
  end
  out[#out + 1] = ">"
  render_children(items, L, depth, out)
  out[#out + 1] = L.nl .. (L.base or "") .. string.rep(L.indent, depth) .. "</" .. d.element .. ">"
end

local function layout_of(t)
  local l = t.layout or {}
  return { nl = l.newline == nil and "\n" or (l.newline == "\r\n" and "\n" or l.newline),
    crlf = l.newline == "\r\n" or l.crlf == true, indent = l.indent or "  ", base = l.base or "", step_order = l.step_order or "CAV",
    classes = l.classes,
    declaration = l.declaration }
end

local function render_sequence(t, L)
  local out = { "<sequence" }
  local a = {}
  for k, v in pairs(t) do
    if type(k) == "string" and k ~= "layout" and k ~= "wrapper" and k ~= "package" and not k:match("^_") then
      a[#a + 1] = { ALIAS[k] or k, tostring(v) }
    end
  end
  table.sort(a, function(x, y)
    if x[1] == "version" then return y[1] ~= "version" end
    if y[1] == "version" then return false end
    return x[1] < y[1]
  end)
  for _, p in ipairs(a) do out[#out + 1] = " " .. p[1] .. '="' .. esc_attr(p[2]) .. '"' end
  local items = {}
  for _, v in ipairs(t) do items[#items + 1] = function(dd) render_step(v, L, dd, out) end end
  if #items == 0 then
    out[#out + 1] = " />"
  else
    out[#out + 1] = ">"
    render_children(items, L, 0, out)
    out[#out + 1] = L.nl .. (L.base or "") .. "</sequence>"
  end
  return table.concat(out)
end

-- The whole document text of a sequence description.
function M.render(t)
  local L = layout_of(t)
  local body = render_sequence(t, L)
  local text
  if t.wrapper then
    local w = nl_norm(t.wrapper)
    if t.package then w = P.fill(w, t.package) end
    local i = w:find(MARK, 1, true)
    if not i then error("the wrapper has no " .. MARK) end
    text = w:sub(1, i - 1) .. body .. w:sub(i + #MARK)
  else
    text = (L.declaration and (L.declaration .. "\n") or "") .. body .. "\n"
  end
  if L.crlf then text = text:gsub("\n", "\r\n") end
  return text
end

function B.sequence(t)
  if type(t) ~= "table" then error("sequence: a table expected", 2) end
  local text = M.render(t)
  local seq, err = ts_real().parse(text, t._source or "<to_lua>")
  if not seq then error("the script's document does not parse: " .. tostring(err), 2) end
  return seq
end

-- A script's description as it is, not rendered: tasksequence.to_lua runs the scripts it
-- writes with `return ts.__describe` to check that they give the document back.
B.__describe = function(t) return t end

-- for tasksequence.to_lua, which writes the scripts
M.condition_xml, M.render_tree, M.render_step = condition_xml, render_tree, render_step
M.ALIAS, M.ATTR_ORDER, M.RESERVED = ALIAS, ATTR_ORDER, RESERVED

return M
