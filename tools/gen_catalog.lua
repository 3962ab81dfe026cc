-- gen_catalog.lua - turns csrc/catalog.tsv into the C tables of the class catalogue.
--   lua5.4 tools/gen_catalog.lua csrc/catalog.tsv build/gen/tsq_catalog.c
-- The tables' types are in csrc/catalog.h. Every fact about a class lives in the tsv.

local src, dst = arg[1], arg[2]
if not src or not dst then
  io.stderr:write("usage: lua5.4 gen_catalog.lua catalog.tsv out.c\n")
  os.exit(2)
end

local function fail(lineno, msg)
  io.stderr:write(string.format("%s:%d: %s\n", src, lineno, msg))
  os.exit(1)
end

local function split(line)
  local t = {}
  for f in (line .. "\t"):gmatch("([^\t]*)\t") do t[#t + 1] = f end
  return t
end

local VTYPES = { bool = "TSQ_V_BOOL", int = "TSQ_V_INT", string = "TSQ_V_STRING",
                 list = "TSQ_V_LIST", objects = "TSQ_V_OBJECTS" }
local FLAGS = { hidden = "TSQ_PF_HIDDEN", required = "TSQ_PF_REQUIRED", secret = "TSQ_PF_SECRET",
                global = "TSQ_PF_GLOBAL", mdt = "TSQ_PF_MDT", init = "TSQ_PF_INIT" }
local ATTRS = { runIn = "A_runIn", timeout = "A_timeout", successCodeList = "A_successCodeList",
                retryCount = "A_retryCount", runFromNet = "A_runFromNet" }
local KINDS = { base = "TSQ_CK_BASE", action = "TSQ_CK_ACTION", helper = "TSQ_CK_HELPER" }

-- ------------------------------------------------------------------ read
local classes, base = {}, nil
local lineno = 0
for line in io.lines(src) do
  lineno = lineno + 1
  if line:match("^%s*$") or line:match("^#") then goto continue end
  local f = split(line)
  local function opt(i) if f[i] == nil or f[i] == "-" then return nil end return f[i] end
  if f[1] == "C" then
    if #f ~= 10 then fail(lineno, "a C row has 10 fields, this one " .. #f) end
    local c = { name = f[2], short = f[3], display = opt(4), env = opt(5), prefix = opt(6),
                element = opt(7), kind = f[8], template = opt(9), template_300 = opt(10),
                props = {}, line = lineno }
    if not KINDS[c.kind] then fail(lineno, "unknown kind " .. c.kind) end
    if c.kind == "base" then
      if base then fail(lineno, "a second base class") end
      base = c
    else
      classes[#classes + 1] = c
    end
    classes.last = c
  elseif f[1] == "P" then
    local c = classes.last
    if not c then fail(lineno, "a P row before any C row") end
    if #f ~= 11 then fail(lineno, "a P row has 11 fields, this one " .. #f) end
    local p = { name = f[2], sdk = f[3], vtype = f[4], variable = opt(5), default = f[7] ~= "-" and f[7] or nil,
                allowed = opt(8), arg = tonumber(opt(9) or "0"), attr = opt(10), range = opt(11), flags = {}, line = lineno }
    if not VTYPES[p.vtype] then fail(lineno, "unknown value type " .. p.vtype) end
    for fl in (opt(6) or ""):gmatch("[^,]+") do
      if not FLAGS[fl] then fail(lineno, "unknown flag " .. fl) end
      p.flags[fl] = true
    end
    if p.vtype == "objects" then
      p.elem = p.sdk:match("^(.-)%[%]$")
      if not p.elem then fail(lineno, "an objects property needs an SDK type Class[]") end
      p.count_prop, p.attr = p.attr, nil
    elseif p.attr and not ATTRS[p.attr] then
      fail(lineno, "unknown step attribute " .. p.attr)
    end
    if p.range then
      local lo, hi = p.range:match("^(%d+)%-(%d+)$")
      if not lo then fail(lineno, "range must be N-M") end
      p.min, p.max = lo, hi
    end
    for _, q in ipairs(c.props) do
      if q.name == p.name then fail(lineno, "duplicate property " .. p.name) end
    end
    c.props[#c.props + 1] = p
  else
    fail(lineno, "a row starts with C or P")
  end
  ::continue::
end
if not base then fail(lineno, "no base class") end

local by_name = {}
for i, c in ipairs(classes) do
  c.index = i - 1
  for _, n in ipairs { c.name, c.short } do
    if by_name[n] and by_name[n] ~= c then fail(c.line, "class name used twice: " .. n) end
    by_name[n] = c
  end
end

-- action classes first: tsq_class_at enumerates those
table.sort(classes, function(a, b)
  local ka, kb = a.kind == "action" and 0 or 1, b.kind == "action" and 0 or 1
  if ka ~= kb then return ka < kb end
  return a.index < b.index
end)
for i, c in ipairs(classes) do c.index = i - 1 end

-- every action also has the base properties: SupportedEnvironment (its own default) and
-- Timeout first, SuccessCodes last unless the class has its own
local function base_prop(name) for _, p in ipairs(base.props) do if p.name == name then return p end end end
for _, c in ipairs(classes) do
  if c.kind == "action" then
    local merged, own = {}, {}
    for _, p in ipairs(c.props) do own[p.name] = true end
    if c.env then
      local se = {}
      for k, v in pairs(base_prop("SupportedEnvironment")) do se[k] = v end
      se.default = c.env
      merged[#merged + 1] = se
    end
    merged[#merged + 1] = base_prop("Timeout")
    for _, p in ipairs(c.props) do
      if p.elem and not by_name[p.elem] then fail(p.line, "unknown element class " .. p.elem) end
      local t = c.template or ""
      if p.arg > 0 and not (t:find("%" .. p.arg, 1, true) or t:find("<?" .. p.arg .. ":", 1, true)) then
        fail(p.line, "argument " .. p.arg .. " is not in the template")
      end
      merged[#merged + 1] = p
    end
    if not own.SuccessCodes then merged[#merged + 1] = base_prop("SuccessCodes") end
    c.all = merged
  else
    c.all = c.props
  end
end
base.all = base.props

-- ------------------------------------------------------------------ write
local out = {}
local function w(...) out[#out + 1] = string.format(...) end
local function cstr(s)
  if s == nil then return "NULL" end
  return '"' .. s:gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"'
end

w("/* Generated by tools/gen_catalog.lua from csrc/catalog.tsv. Do not edit. */\n")
w('#include "tsq_int.h"\n#include "catalog.h"\n\n')

local function emit_props(tag, c)
  if #c.all == 0 then return end
  w("static const tsq_cprop props_%s[] = {\n", tag)
  for _, p in ipairs(c.all) do
    local flags = {}
    for _, k in ipairs { "hidden", "required", "secret", "global", "mdt", "init" } do
      if p.flags[k] then flags[#flags + 1] = FLAGS[k] end
    end
    w("    {{%s, %s, %s, %s, %s, %s, %d, %d, %d, %d, %d},\n", cstr(p.name), VTYPES[p.vtype], cstr(p.sdk),
      cstr(p.variable), cstr(p.default), cstr(p.allowed), p.flags.hidden and 1 or 0,
      p.flags.required and 1 or 0, p.flags.secret and 1 or 0, p.flags.global and 1 or 0, p.arg)
    w("     %s, %s, %s, %s, %s, %s, %s},\n", #flags > 0 and table.concat(flags, " | ") or "0",
      p.attr and ATTRS[p.attr] or "-1", p.range and "1" or "0", p.min and (p.min .. "LL") or "0",
      p.max and (p.max .. "LL") or "0", p.elem and ("&tsq_classes[" .. by_name[p.elem].index .. "]") or "NULL",
      cstr(p.count_prop))
  end
  w("};\n\n")
end

emit_props("base", base)
for _, c in ipairs(classes) do emit_props(tostring(c.index), c) end

local function class_init(c, tag)
  return string.format("{{%s, %s, %s, %s, %s, %d}, %s, %s, %s, %s, %s}", cstr(c.name), cstr(c.short), cstr(c.display or ""),
    cstr(c.env), cstr(c.template), #c.all, cstr(c.prefix), cstr(c.element), cstr(c.template_300),
    KINDS[c.kind], #c.all > 0 and ("props_" .. tag) or "NULL")
end

w("const tsq_class tsq_base_class = %s;\n\n", class_init(base, "base"))

local nactions = 0
w("const tsq_class tsq_classes[] = {\n")
for _, c in ipairs(classes) do
  w("    %s,\n", class_init(c, tostring(c.index)))
  if c.kind == "action" then nactions = nactions + 1 end
end
w("};\n\n")
w("const size_t tsq_nclasses = %d;\nconst size_t tsq_naction_classes = %d;\n\n", #classes, nactions)

local names = {}
for n, c in pairs(by_name) do names[#names + 1] = { n, c.index } end
table.sort(names, function(a, b) return a[1] < b[1] end) -- byte order, as strcmp
w("const tsq_class_name tsq_class_names[] = {\n")
for _, e in ipairs(names) do w("    {%s, %d},\n", cstr(e[1]), e[2]) end
w("};\nconst size_t tsq_nclass_names = %d;\n", #names)

-- An open-addressed index of the names for tsq_class_find: the key mixes the length and
-- four bytes (tsq_class_key in catalog.h computes the same), then linear probing.
local HASH = 256
local function key(s)
  local n = #s
  local h = n
  h = h * 33 ~ s:byte(n)
  h = h * 33 ~ s:byte((n > 8 and n - 8 or 0) + 1)
  h = h * 33 ~ s:byte(n // 2 + 1)
  h = h * 33 ~ s:byte((n * 3) // 4 + 1)
  return h % HASH
end
local slots, longest = {}, 0
for i, e in ipairs(names) do
  local h, probes = key(e[1]), 1
  while slots[h] do h, probes = (h + 1) % HASH, probes + 1 end
  slots[h] = i - 1
  if probes > longest then longest = probes end
end
assert(#names * 2 <= HASH, "the class name index needs more slots")
w("const short tsq_class_hash[%d] = {", HASH)
for h = 0, HASH - 1 do w("%s%d,", h % 16 == 0 and "\n    " or " ", slots[h] or -1) end
w("\n};\n/* the longest probe: %d */\n", longest)

local f = assert(io.open(dst, "w"))
f:write(table.concat(out))
f:close()
