-- tasksequence.to_lua: a task sequence document as a Lua script that rebuilds it, and
-- the builder such scripts run with (tasksequence.to_lua_builder).
--
--   to_lua.from_xml(text [, name]) -> script | nil, message
--   to_lua.builder                 -- the `ts` of generated scripts: sequence, group,
--                                  -- action, step, raw, condition and one constructor per
--                                  -- class short name; anything else is the real module's
--
-- Scripts say each step with constructors (ts.group "Name" { ... },
-- ts.RunCommandLine "Name" { CommandLine = [[...]] }) and conditions in their text form.
-- The builder renders them as XML in the document's layout and parses that with
-- ts.parse, so the result is a real sequence. Every step is checked when the script is
-- generated: a step whose constructor form would not give back the same XML (c14n) is
-- written as ts.raw [[<step ...>]], so XML -> Lua -> XML is always the same document.
-- A wrapped document's package fields become `package = { Name = ..., Icon = ts.bytes
-- [[...]] }` and the rest of the wrapper a skeleton text (tasksequence.to_lua_package).
local M = {}

-- the tasksequence module, asked for when it is used (it requires this file's users)
local function ts_real() return require "tasksequence" end

local X = require "tasksequence.to_lua_xml"
local P = require "tasksequence.to_lua_package"
local BM = require "tasksequence.to_lua_builder"
local B = BM.builder
local catalogue, condition_xml, render_tree, render_step = BM.catalogue, BM.condition_xml, BM.render_tree, BM.render_step
local ALIAS, ATTR_ORDER, RESERVED = BM.ALIAS, BM.ATTR_ORDER, BM.RESERVED
M.builder, M.render, M.catalogue = B, BM.render, catalogue
local parse_xml, nl_norm, attr_value = X.parse, X.nl_norm, X.attr_value
local elements, attr_map, canon_str, plain_text, locate = X.elements, X.attr_map, X.canon_str, X.plain_text, X.locate

-- ------------------------------------------------------------------ script writing

local function lstr(s)
  if s:find("[\r%z\1-\8\11\12\14-\31]") then
    return (string.format("%q", s):gsub("\\\n", "\\n"))
  end
  if not s:find("[\n\"\\]") then return '"' .. s .. '"' end
  local eq = ""
  while s:find("]" .. eq .. "]", 1, true) or s:sub(-#eq - 1) == "]" .. eq do eq = eq .. "=" end
  local lead = s:sub(1, 1) == "\n" and "\n" or ""
  return "[" .. eq .. "[" .. lead .. s .. "]" .. eq .. "]"
end
M.lstr = lstr

local KEYWORDS = {}
for w in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while"):gmatch("%a+") do KEYWORDS[w] = true end
local function key(k)
  if k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return k end
  return "[" .. lstr(k) .. "]"
end

local ATTR_TO_PROP = { description = "Description", runIn = "SupportedEnvironment", timeout = "Timeout",
  successCodeList = "SuccessCodes", retryCount = "RetryCount", runFromNet = "RunFromNet" }

local function value_lit(v, as_number)
  if as_number and v:match("^%d+$") and #v < 10 and not v:match("^0%d") then return v end
  return lstr(v)
end

-- Condition text (via the real module), or nil when it can not say it exactly.
local function condition_text(el, L, depth)
  local ok, mod = pcall(ts_real)
  if not ok or not mod.parse then return nil end
  local src = el.src_text
  local okp, res = pcall(function()
    local s = mod.parse('<sequence version="3.10"><group name="c">' .. src .. "</group></sequence>")
    if not s then return nil end
    local g
    for st in s:steps() do g = st; break end
    local c = g and g.Condition
    if c == nil then return nil end
    local text = tostring(c)
    local back = {}
    render_tree(condition_xml(B.condition(text)), L, depth, back)
    local tree = parse_xml(table.concat(back))
    if canon_str(elements(tree)[1]) ~= canon_str(el) then return nil end
    return text
  end)
  if okp then return res end
  return nil
end

local function attr_lines(el, vars_keys)
  local lines = {}
  local cat = catalogue(attr_map(el).type)
  local given = vars_keys
  vars_keys = setmetatable({}, { __index = function(_, k) return given[k] or (cat[k] ~= nil and cat[k].variable ~= nil) end })
  -- attribute order does not make a document different: one order, the builder's
  local rank = {}
  for i, k in ipairs(ATTR_ORDER) do rank[k] = i end
  local attrs = { table.unpack(el.attrs) }
  table.sort(attrs, function(x, y)
    local rx, ry = rank[x[1]] or 1000, rank[y[1]] or 1000
    if rx ~= ry then return rx < ry end
    return x[1] < y[1]
  end)
  for _, a in ipairs(attrs) do
    local k, v = a[1], attr_value(a[2])
    if k == "name" or k == "type" then
      -- in the constructor
    elseif k == "disable" and (v == "true" or v == "false") then
      lines[#lines + 1] = "Enabled = " .. (v == "false" and "true" or "false")
    elseif k == "continueOnError" and (v == "true" or v == "false") then
      lines[#lines + 1] = "ContinueOnError = " .. v
    elseif k == "runFromNet" and (v == "true" or v == "false") and not vars_keys.RunFromNet then
      lines[#lines + 1] = "RunFromNet = " .. v
    elseif ATTR_TO_PROP[k] and not vars_keys[ATTR_TO_PROP[k]] then
      lines[#lines + 1] = ATTR_TO_PROP[k] .. " = " .. value_lit(v, k == "timeout" or k == "retryCount")
    elseif k:match("^%l") and not RESERVED[k] and not ALIAS[k] then
      lines[#lines + 1] = key(k) .. " = " .. lstr(v)
    else
      return nil
    end
  end
  return lines
end

local function constructor(el)
  local a = attr_map(el)
  local name = a.name
  if name == nil then return nil end
  if el.tag == "group" then return "ts.group " .. lstr(name) end
  local t = a.type
  if t == nil then return "ts.step " .. lstr(name) end
  local short = t:match("^SMS_TaskSequence_(%u%w*)Action$")
  if short and not KEYWORDS[short] and rawget(B, short) == nil then return "ts." .. short .. " " .. lstr(name) end
  return "ts.action " .. lstr(t) .. " " .. lstr(name)
end

local emit_step

local function raw_of(el, src) return "ts.raw " .. lstr(nl_norm(src:sub(el.s, el.e - 1))) end

-- The body lines of an action description, or nil when it can not be said.
local function action_lines(el, src, L, depth)
  local lines, order, raws = {}, {}, {}
  local vars_keys, var_lines, vars_spec, hidden = {}, {}, {}, {}
  local cond, cmd, has_vars
  for _, k in ipairs(elements(el)) do
    if k.tag == "action" and not cmd then
      cmd = plain_text(k)
      if not cmd then return nil end
      order[#order + 1] = "A"
    elseif k.tag == "defaultVarList" and not has_vars then
      has_vars = true
      order[#order + 1] = "V"
      for _, v in ipairs(elements(k)) do
        if v.tag ~= "variable" or #elements(v) > 0 then return nil end
        local m = attr_map(v)
        for _, a in ipairs(v.attrs) do
          if a[1] == "hidden" then
            if attr_value(a[2]) ~= "true" then return nil end
          elseif a[1] ~= "name" and a[1] ~= "property" then
            return nil
          end
        end
        if m.hidden then hidden[#hidden + 1] = m.property or m.name end
        if not m.name then return nil end
        local vkey = m.property or m.name
        if vars_keys[vkey] then return nil end
        local text = plain_text(v)
        if not text then return nil end
        vars_keys[vkey] = true
        var_lines[#var_lines + 1] = key(vkey) .. " = " .. lstr(text)
        if vkey:find("[%s=]") or m.name:find("[%s=]") then return nil end
        if m.property == nil then vars_spec[#vars_spec + 1] = m.name .. "="
        elseif m.property ~= m.name then vars_spec[#vars_spec + 1] = m.name .. "=" .. m.property
        else vars_spec[#vars_spec + 1] = m.name end
      end
    elseif k.tag == "condition" and not cond then
      cond = k
      order[#order + 1] = "C"
    else
      raws[#raws + 1] = raw_of(k, src)
      order[#order + 1] = "R"
    end
  end
  local al = attr_lines(el, vars_keys)
  if not al then return nil end
  for _, l in ipairs(al) do lines[#lines + 1] = l end
  if cond then
    cond.src_text = src:sub(cond.s, cond.e - 1)
    local text = condition_text(cond, L, depth + 1)
    lines[#lines + 1] = "Condition = " .. (text and ("ts.condition " .. lstr(text)) or raw_of(cond, src))
  end
  for _, l in ipairs(var_lines) do lines[#lines + 1] = l end
  -- said only when the defaults (document's usual list, catalogue) do not give them
  local optional = {}
  if has_vars then
    optional.vars = "_vars = " .. lstr(table.concat(vars_spec, " "))
    optional.hidden = "_hidden = " .. lstr(table.concat(hidden, " "))
  end
  if cmd then lines[#lines + 1] = "command = " .. lstr(cmd) end
  local ord = table.concat(order)
  -- the document's default order, filtered to what this step has
  local def = L.step_order:gsub("[^" .. (ord ~= "" and ord or "x") .. "]", "")
  if ord:find("R") or ord ~= def then lines[#lines + 1] = "_order = " .. lstr(ord) end
  if el.tag ~= "step" then lines[#lines + 1] = "_element = " .. lstr(el.tag) end
  for _, r in ipairs(raws) do lines[#lines + 1] = r end
  return lines, optional
end

local function group_lines(el, src, L, depth, pad)
  local lines, kids = {}, {}
  local cond, cond_at, seen = nil, 0, 0
  for _, k in ipairs(elements(el)) do
    if k.tag == "condition" and not cond then
      cond, cond_at = k, seen
    else
      seen = seen + 1
      kids[#kids + 1] = emit_step(k, src, L, depth + 1, pad .. "  ")
    end
  end
  local al = attr_lines(el, {})
  if not al then return nil end
  for _, l in ipairs(al) do lines[#lines + 1] = l end
  if cond then
    cond.src_text = src:sub(cond.s, cond.e - 1)
    local text = condition_text(cond, L, depth + 1)
    lines[#lines + 1] = "Condition = " .. (text and ("ts.condition " .. lstr(text)) or raw_of(cond, src))
    if cond_at ~= 0 then lines[#lines + 1] = "_cond_at = " .. cond_at end
  end
  for _, k in ipairs(kids) do lines[#lines + 1] = k end
  return lines
end

-- Entries are already indented inside (long strings must not be touched).
local function join(head, lines, pad)
  if #lines == 0 then return head .. " {}" end
  local body = {}
  for _, l in ipairs(lines) do body[#body + 1] = pad .. "  " .. l .. "," end
  return head .. " {\n" .. table.concat(body, "\n") .. "\n" .. pad .. "}"
end

-- Script text of one step element; checked against the source, raw when it differs.
emit_step = function(el, src, L, depth, pad)
  local is_step = el.tag == "group" or el.tag == "step" or el.tag == "subtasksequence"
  if not is_step then return raw_of(el, src) end
  local head = constructor(el)
  local lines, optional
  if head then
    if el.tag == "group" then lines = group_lines(el, src, L, depth, pad)
    else lines, optional = action_lines(el, src, L, depth) end
  end
  if not lines then return raw_of(el, src) end
  optional = optional or {}
  local want = canon_str(el)
  -- the check: the builder must give back this very element; the shortest form that does
  local tries = { {}, { optional.hidden }, { optional.vars }, { optional.vars, optional.hidden } }
  local text, why
  for _, extra in ipairs(tries) do
    local all = { table.unpack(lines) }
    for _, x in ipairs(extra) do all[#all + 1] = x end
    text = join(head, all, pad)
    local chunk, lerr = load("return " .. text, "=step", "t", { ts = B })
    if not chunk then error("to_lua produced a script it can not load: " .. lerr .. "\n" .. text) end
    local ok, same = pcall(function()
      local d = chunk()
      local out = {}
      render_step(d, L, depth, out)
      local tree = parse_xml(table.concat(out))
      return canon_str(elements(tree)[1]) == want
    end)
    if ok and same then return text end
    why = ok and "differs" or same
    if #extra == 0 and not next(optional) then break end
  end
  if os.getenv("TSQ_TO_LUA_DEBUG") then io.stderr:write("raw step: ", tostring(why), "\n", text, "\n") end
  return raw_of(el, src)
end

-- The variables of a step element as a _vars spec and its hidden keys, or nil.
local function var_spec_of(step)
  for _, k in ipairs(elements(step)) do
    if k.tag == "defaultVarList" then
      local toks, hid = {}, {}
      for _, v in ipairs(elements(k)) do
        local m = attr_map(v)
        if not m.name then return nil end
        if m.property == nil then toks[#toks + 1] = m.name .. "="
        elseif m.property ~= m.name then toks[#toks + 1] = m.name .. "=" .. m.property
        else toks[#toks + 1] = m.name end
        if m.hidden == "true" then hid[#hid + 1] = m.property or m.name end
      end
      return table.concat(toks, " "), table.concat(hid, " ")
    end
  end
end

-- Per class, the variable list most steps of this document carry (used as the default).
local function usual_classes(seqel)
  local count, best = {}, {}
  local function walk(el)
    for _, k in ipairs(elements(el)) do
      if k.tag == "group" then walk(k)
      elseif k.tag == "step" or k.tag == "subtasksequence" then
        local t = attr_map(k).type or ""
        local spec, hid = var_spec_of(k)
        if spec and spec ~= "" then
          local key = spec .. "\0" .. hid
          count[t] = count[t] or {}
          count[t][key] = (count[t][key] or 0) + 1
        end
      end
    end
  end
  walk(seqel)
  for t, c in pairs(count) do
    -- the longest list seen twice or more, then what the others add, most common first
    local specs = {}
    for k, n in pairs(c) do
      local spec, hid = k:match("^(.-)%z(.*)$")
      local ntok = select(2, spec:gsub("%S+", ""))
      specs[#specs + 1] = { spec = spec, hid = hid, n = n, ntok = ntok }
    end
    table.sort(specs, function(a, b)
      local ra, rb = a.n >= 2, b.n >= 2
      if ra ~= rb then return ra end
      if a.ntok ~= b.ntok then return a.ntok > b.ntok end
      if a.n ~= b.n then return a.n > b.n end
      return a.spec .. a.hid < b.spec .. b.hid
    end)
    local total = 0
    for _, x in ipairs(specs) do total = total + x.n end
    if total >= 2 then
      local toks, have, hidden = {}, {}, {}
      for _, x in ipairs(specs) do
        local hs = {}
        for h in x.hid:gmatch("%S+") do hs[h] = true end
        for tok in x.spec:gmatch("%S+") do
          local k = tok:match("=(.+)$") or tok:match("^(.-)=$") or tok
          if not have[k] then
            have[k] = true
            toks[#toks + 1] = tok
            if hs[k] then hidden[#hidden + 1] = k end
          end
        end
      end
      best[t] = { vars = table.concat(toks, " "), hidden = table.concat(hidden, " ") }
    end
  end
  return best
end

local function detect_layout(seqel, src)
  local L = { nl = "\n", indent = "  ", crlf = false, base = "" }
  local before = src:sub(1, seqel.s - 1)
  L.base = nl_norm(before):match("\n([ \t]*)$") or ""
  local body = src:sub(seqel.s, seqel.e - 1)
  if body:find("\r\n", 1, true) then L.crlf = true end
  local first = seqel.kids[1]
  if not body:find("\n", 1, true) or (first and first.tag) then L.nl, L.indent = "", "" end
  if first and first.kind == "text" then
    local ws = nl_norm(first.text):match("\n([ \t]*)$")
    if ws and #ws > #L.base and ws:sub(1, #L.base) == L.base then L.indent = ws:sub(#L.base + 1) end
  end
  -- the most common order of condition (C), action (A) and defaultVarList (V) in steps
  local counts = {}
  local function walk(el)
    for _, k in ipairs(elements(el)) do
      if k.tag == "step" or k.tag == "subtasksequence" then
        local o = {}
        for _, c in ipairs(elements(k)) do
          o[#o + 1] = ({ condition = "C", action = "A", defaultVarList = "V" })[c.tag]
        end
        local s = table.concat(o)
        counts[s] = (counts[s] or 0) + 1
      elseif k.tag == "group" then
        walk(k)
      end
    end
  end
  walk(seqel)
  local best, bestn = "CAV", -1
  for _, perm in ipairs { "CAV", "CVA", "ACV", "AVC", "VAC", "VCA" } do
    local n = 0
    for s, c in pairs(counts) do
      if perm:gsub("[^" .. (s ~= "" and s or "x") .. "]", "") == s then n = n + c end
    end
    if n > bestn then best, bestn = perm, n end
  end
  L.step_order = best
  L.classes = usual_classes(seqel)
  return L
end

function M.from_xml(src, name)
  local ok, seqel, text, wrapper = pcall(locate, src)
  if not ok then return nil, (name or "<string>") .. ": " .. tostring(seqel) end
  local L = detect_layout(seqel, text)
  local lines = {}
  for _, a in ipairs(seqel.attrs) do
    local k, v = a[1], attr_value(a[2])
    local pk = k == "name" and "Name" or k == "description" and "Description" or k
    lines[#lines + 1] = key(pk) .. " = " .. lstr(v)
  end
  local lay = { "newline = " .. lstr(L.crlf and "\r\n" or L.nl):gsub("^%[%[\n", "\"\\n\""), "indent = " .. lstr(L.indent) }
  if L.nl == "" then lay[1] = 'newline = ""' .. (L.crlf and ", crlf = true" or "")
  elseif L.crlf then lay[1] = 'newline = "\\r\\n"' else lay[1] = 'newline = "\\n"' end
  if L.indent == "\t" then lay[2] = 'indent = "\\t"' end
  lay[#lay + 1] = "step_order = " .. lstr(L.step_order)
  if L.base ~= "" then lay[#lay + 1] = "base = " .. (L.base:find("\t") and string.format("%q", L.base):gsub("\t", "\\t") or lstr(L.base)) end
  if not wrapper then
    local decl = src:match("^(<%?xml[^>]-%?>)")
    if decl then lay[#lay + 1] = "declaration = " .. lstr(decl) end
  end
  local cls = {}
  for t in pairs(L.classes) do cls[#cls + 1] = t end
  table.sort(cls)
  if #cls > 0 then
    local parts = {}
    for _, t in ipairs(cls) do
      local c = L.classes[t]
      parts[#parts + 1] = "      " .. key(t) .. " = { vars = " .. lstr(c.vars) .. ", hidden = " .. lstr(c.hidden) .. " },"
    end
    lay[#lay + 1] = "\n    classes = {\n" .. table.concat(parts, "\n") .. "\n    },\n  "
  end
  lines[#lines + 1] = "layout = { " .. table.concat(lay, ", ") .. " }"
  local steps = {}
  for _, k in ipairs(elements(seqel)) do steps[#steps + 1] = emit_step(k, text, L, 1, "  ") end
  -- a wrapper: its fields as a package table, the rest as text (all of it as text when
  -- the fields do not give the same wrapper back)
  local tries = wrapper and { true, false } or { false }
  local script, okr, same
  for _, with_fields in ipairs(tries) do
    local head = { table.unpack(lines) }
    if wrapper then
      local w = nl_norm(wrapper)
      local entry, skeleton = P.entry(with_fields and w, key, lstr)
      if entry then head[#head + 1], w = entry, skeleton end
      head[#head + 1] = "wrapper = " .. lstr(w)
    end
    table.move(steps, 1, #steps, #head + 1, head)
    script = "-- " .. (name or "document") .. " as a script (tsq to-lua); tsq build gives the XML back\n"
      .. 'local ts = require "tasksequence.to_lua".builder\n\nreturn ' .. join("ts.sequence", head, "") .. "\n"
    -- the whole document must come back the same; else say it as raw XML
    okr, same = pcall(function()
      local env = { require = function(m) if m == "tasksequence.to_lua" then return M end return require(m) end }
      local c = load(script:gsub("return ts%.sequence", "return ts.__describe", 1), "=to_lua", "t", env)
      local desc = c()
      local back = M.render(desc)
      local _, bseq, _, bwrap = pcall(locate, back)
      return canon_str(bseq) == canon_str(seqel) and (bwrap and nl_norm(bwrap)) == (wrapper and nl_norm(wrapper))
    end)
    if okr and same then break end
  end
  if not (okr and same) then
    script = "-- " .. (name or "document") .. " (tsq to-lua): its layout has no constructor form\n"
      .. 'local ts = require "tasksequence"\n\nreturn assert(ts.parse(' .. lstr(nl_norm(src)) .. "))\n"
  end
  return script
end

-- A sequence object of the real module as a script.
function M.from_seq(seq) return M.from_xml(seq:to_xml()) end

-- Whether two document texts are the same document: the sequence compared as canonical
-- XML (attribute order, CR LF and CDATA do not matter; white space text does), the
-- wrapper around it compared as text.
M.equal_xml = X.equal

return M
