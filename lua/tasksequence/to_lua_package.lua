-- tasksequence.to_lua_package: the wrapper of an exported sequence as package fields.
--
-- A console export (object.xml: the CIM INSTANCE of an SMS_TaskSequencePackage) and an
-- <SmsTaskSequencePackage> file hold the sequence inside a package whose fields (Name,
-- PackageID, Description, the icon, ...) a generated script should show as Lua. The
-- wrapper's text is split into the fields and a skeleton that keeps only what the fields
-- can not say (element structure, CIM qualifiers, white space), with a placeholder where
-- each value stood:
--   <!--tsq:field NAME-->   the text of field NAME
--   <!--tsq:items NAME-->   the items of array field NAME, each <VALUE>...</VALUE>, joined
--                           by the white space just before the placeholder
--
--   P.split(wrapper)        -> skeleton, fields ({ {name, value}, ... } in document order)
--   P.fill(skeleton, pkg)   -> the wrapper text again (raises on an unknown/missing field)
--   P.bytes(base64)         -> a byte string value (a uint8 array such as the icon)
--   P.literal(value, lstr, pad) -> the Lua text of a field value
--   P.entry(wrapper, key, lstr) -> the script's `package = {...}` entry, the skeleton
local X = require "tasksequence.to_lua_xml"
local P = {}

local esc_text = X.esc_text

-- ------------------------------------------------------------------ base64

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_INDEX = {}
for i = 1, 64 do B64_INDEX[B64:byte(i)] = i - 1 end

local function b64_encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local q = {}
    for k = 1, 4 do
      local v = (n >> (6 * (4 - k))) & 63
      q[k] = B64:sub(v + 1, v + 1)
    end
    if not b then q[3], q[4] = "=", "=" elseif not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

local function b64_decode(s)
  s = s:gsub("%s", "")
  if #s % 4 ~= 0 or s:find("[^%w+/=]") or s:find("=[^=]") then error("bytes: malformed base64 text", 3) end
  local out = {}
  for i = 1, #s, 4 do
    local n, pad = 0, 0
    for k = 0, 3 do
      local ch = s:byte(i + k)
      if ch == 61 then pad = pad + 1; n = n << 6 else n = (n << 6) | B64_INDEX[ch] end
    end
    local bytes = string.char((n >> 16) & 255, (n >> 8) & 255, n & 255)
    out[#out + 1] = bytes:sub(1, 3 - pad)
  end
  return table.concat(out)
end

local BYTES_MT = { __name = "tasksequence.bytes" }
BYTES_MT.__index = BYTES_MT
function BYTES_MT.__tostring(b) return b64_encode(b.data) end

-- ts.bytes [[base64]] in a generated script: a byte string (a uint8 array of the package).
function P.bytes(text)
  if type(text) ~= "string" then error("bytes: base64 text expected", 2) end
  return setmetatable({ data = b64_decode(text) }, BYTES_MT)
end

local function is_bytes(v) return getmetatable(v) == BYTES_MT end

-- ------------------------------------------------------------------ splitting

-- The text of an element that holds one plain text node and nothing else, when writing
-- the decoded text back gives the same bytes (else the value stays in the skeleton).
local function value_text(el)
  if #el.kids ~= 1 or el.kids[1].kind ~= "text" then return nil end
  local raw = el.kids[1].text
  local v = X.decode(raw)
  if esc_text(v) ~= raw then return nil end
  return v
end

local function attr(el, name)
  for _, a in ipairs(el.attrs) do if a[1] == name then return X.attr_value(a[2]) end end
  return nil
end

-- CIM: PROPERTY NAME=x > VALUE, and PROPERTY.ARRAY NAME=x > VALUE.ARRAY > VALUE...
local function cim_fields(root, add)
  for _, p in ipairs(X.elements(root)) do
    local name = attr(p, "NAME")
    local kids = X.elements(p)
    if name and p.tag == "PROPERTY" then
      for _, v in ipairs(kids) do
        if v.tag == "VALUE" then
          local text = value_text(v)
          if text then add(name, text, v.cs, v.ce, "field") end
        end
      end
    elseif name and p.tag == "PROPERTY.ARRAY" then
      for _, arr in ipairs(kids) do
        if arr.tag == "VALUE.ARRAY" then
          -- items separated by one and the same white space, the one before the first
          local items, sep, ok = {}, nil, true
          local first, last
          for _, k in ipairs(arr.kids) do
            if k.tag == "VALUE" then
              local t = value_text(k)
              if not t then ok = false break end
              items[#items + 1] = t
              first, last = first or k, k
            elseif k.kind == "text" then
              if not k.text:match("^%s*$") then ok = false break end
              if first and k ~= arr.kids[#arr.kids] and k.text ~= sep then ok = false break end
              sep = sep or k.text
            else
              ok = false
              break
            end
          end
          if ok and first and sep then
            local value = items
            if attr(p, "TYPE") == "uint8" then
              local bytes = {}
              for i, t in ipairs(items) do
                local n = t:match("^%d+$") and tonumber(t)
                if not n or n > 255 or tostring(n) ~= t then bytes = nil break end
                bytes[i] = string.char(n)
              end
              if bytes then value = setmetatable({ data = table.concat(bytes) }, BYTES_MT) end
            end
            add(name, value, first.s, last.e, "items")
          end
        end
      end
    end
  end
end

-- SmsTaskSequencePackage: one element per field, <Name>text</Name>.
local function package_fields(root, add)
  for _, f in ipairs(X.elements(root)) do
    local text = value_text(f)
    if text then add(f.tag, text, f.cs, f.ce, "field") end
  end
end

function P.split(wrapper)
  local tree = X.parse(wrapper)
  local root = X.elements(tree)[1]
  local fields, cuts, seen = {}, {}, {}
  local function add(name, value, s, e, kind)
    if seen[name] or name:find("-->", 1, true) or name:find("%s") then return end
    seen[name] = true
    fields[#fields + 1] = { name, value }
    cuts[#cuts + 1] = { s = s, e = e, text = "<!--tsq:" .. kind .. " " .. name .. "-->" }
  end
  if root and root.tag == "INSTANCE" then cim_fields(root, add)
  elseif root and root.tag == "SmsTaskSequencePackage" then package_fields(root, add) end
  table.sort(cuts, function(a, b) return a.s < b.s end)
  local out, pos = {}, 1
  for _, c in ipairs(cuts) do
    out[#out + 1] = wrapper:sub(pos, c.s - 1)
    out[#out + 1] = c.text
    pos = c.e
  end
  out[#out + 1] = wrapper:sub(pos)
  return table.concat(out), fields
end

-- ------------------------------------------------------------------ filling

local function items_of(name, v)
  if is_bytes(v) then
    local out = {}
    for i = 1, #v.data do out[i] = tostring(v.data:byte(i)) end
    return out
  end
  if type(v) ~= "table" then error(("package field %s: an array or ts.bytes expected, got %s"):format(name, type(v)), 0) end
  local out = {}
  for i, x in ipairs(v) do out[i] = tostring(x) end
  return out
end

function P.fill(skeleton, pkg)
  local used = {}
  local text = skeleton:gsub("<!%-%-tsq:field ([^%s>]+)%-%->", function(name)
    local v = pkg[name]
    if v == nil then error("package field " .. name .. " is missing", 0) end
    if type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean" then
      error(("package field %s: a string expected, got %s"):format(name, type(v)), 0)
    end
    used[name] = true
    return esc_text(tostring(v))
  end)
  text = text:gsub("(%s*)<!%-%-tsq:items ([^%s>]+)%-%->", function(sep, name)
    local v = pkg[name]
    if v == nil then error("package field " .. name .. " is missing", 0) end
    used[name] = true
    local parts = {}
    for i, x in ipairs(items_of(name, v)) do parts[i] = "<VALUE>" .. esc_text(x) .. "</VALUE>" end
    return sep .. table.concat(parts, sep)
  end)
  for k in pairs(pkg) do
    if not used[k] then error("package field " .. tostring(k) .. " has no place in this wrapper", 0) end
  end
  return text
end

-- ------------------------------------------------------------------ script text

-- The Lua text of a field value; lstr writes strings, pad indents continuation lines.
function P.literal(v, lstr, pad)
  if is_bytes(v) then
    local b = b64_encode(v.data)
    local lines = {}
    for i = 1, #b, 76 do lines[#lines + 1] = b:sub(i, i + 75) end
    return "ts.bytes [[\n" .. table.concat(lines, "\n") .. "\n]]"
  end
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = lstr(x) end
    local one = "{ " .. table.concat(parts, ", ") .. " }"
    if #one <= 100 then return one end
    return "{\n" .. pad .. "  " .. table.concat(parts, ",\n" .. pad .. "  ") .. ",\n" .. pad .. "}"
  end
  return lstr(v)
end

-- The `package = { ... }` entry of a generated ts.sequence table and the skeleton, or nil
-- when the wrapper (false: not wanted) has no fields. key and lstr write keys and strings.
function P.entry(wrapper, key, lstr)
  if not wrapper then return nil end
  local skeleton, fields = P.split(wrapper)
  if #fields == 0 then return nil end
  local entries = {}
  for _, f in ipairs(fields) do entries[#entries + 1] = "    " .. key(f[1]) .. " = " .. P.literal(f[2], lstr, "    ") .. "," end
  return "package = {\n" .. table.concat(entries, "\n") .. "\n  }", skeleton
end

return P
