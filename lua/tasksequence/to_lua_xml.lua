-- tasksequence.to_lua_xml: the XML reading that tasksequence.to_lua needs. A small reader
-- that keeps every node's source span, so that a step can be quoted exactly as it was
-- written (ts.raw), and a canonical form for comparing two readings.
--
--   X.parse(src)          -> tree (raises on malformed text)
--   X.locate(src)         -> the <sequence> element, its text, the wrapper (or nil)
--   X.canon_str(el)       -> canonical text of an element
--   X.equal(a, b)         -> whether two document texts are the same document
local X = {}

X.MARK = "<!--tsq:sequence-->" -- stands for the sequence inside a wrapper's text

local ENT = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'" }
local function decode(s)
  return (s:gsub("&(#?[xX]?)(%w+);", function(p, v)
    if p == "" then return ENT[v] end
    local n = tonumber(v, (p == "#x" or p == "#X") and 16 or 10)
    return n and utf8.char(n) or nil
  end))
end

-- A tree of { tag, attrs = { {name, raw} }, kids, s, e } and text nodes
-- { kind = "text"|"cdata"|"comment"|"pi", text, s, e }; s..e-1 is the source span.
local function parse_xml(src)
  local root = { kids = {} }
  local stack = { root }
  local pos, n = 1, #src
  while pos <= n do
    local lt = src:find("<", pos, true)
    local top = stack[#stack]
    if not lt then
      top.kids[#top.kids + 1] = { kind = "text", text = src:sub(pos), s = pos, e = n + 1 }
      break
    end
    if lt > pos then top.kids[#top.kids + 1] = { kind = "text", text = src:sub(pos, lt - 1), s = pos, e = lt } end
    if src:sub(lt, lt + 3) == "<!--" then
      local e = src:find("-->", lt + 4, true) or error("unterminated comment")
      top.kids[#top.kids + 1] = { kind = "comment", text = src:sub(lt + 4, e - 1), s = lt, e = e + 3 }
      pos = e + 3
    elseif src:sub(lt, lt + 8) == "<![CDATA[" then
      local e = src:find("]]>", lt + 9, true) or error("unterminated CDATA section")
      top.kids[#top.kids + 1] = { kind = "cdata", text = src:sub(lt + 9, e - 1), s = lt, e = e + 3, cs = lt + 9 }
      pos = e + 3
    elseif src:sub(lt, lt + 1) == "<?" then
      local e = src:find("?>", lt + 2, true) or error("unterminated processing instruction")
      top.kids[#top.kids + 1] = { kind = "pi", text = src:sub(lt + 2, e - 1), s = lt, e = e + 2 }
      pos = e + 2
    elseif src:sub(lt, lt + 1) == "<!" then
      local e = src:find(">", lt, true) or error("unterminated declaration")
      pos = e + 1
    elseif src:sub(lt, lt + 1) == "</" then
      local e = src:find(">", lt, true) or error("unterminated end tag")
      local el = table.remove(stack)
      if #stack == 0 then error("unbalanced end tag") end
      el.e = e + 1
      el.ce = lt
      pos = e + 1
    else
      local name, q = src:match("^([^%s/>]+)()", lt + 1)
      if not name then error("bad start tag at byte " .. lt) end
      local el = { tag = name, attrs = {}, kids = {}, s = lt }
      while true do
        local an, quote, qe = src:match("^%s*([^%s=/>]+)%s*=%s*([\"'])()", q)
        if not an then break end
        local ve = src:find(quote, qe, true) or error("unterminated attribute value")
        el.attrs[#el.attrs + 1] = { an, src:sub(qe, ve - 1) }
        q = ve + 1
      end
      local close, ge = src:match("^%s*(/?)>()", q)
      if not ge then error("bad start tag at byte " .. lt) end
      top.kids[#top.kids + 1] = el
      el.cs = ge
      if close == "/" then
        el.e, el.empty, el.ce = ge, true, ge
      else
        stack[#stack + 1] = el
      end
      pos = ge
    end
  end
  if #stack > 1 then error("unclosed element <" .. stack[#stack].tag .. ">") end
  return root
end

local function nl_norm(s) return (s:gsub("\r\n?", "\n")) end

local function attr_value(raw) return decode((nl_norm(raw):gsub("[\t\n]", " "))) end

local function elements(el)
  local out = {}
  for _, k in ipairs(el.kids) do if k.tag then out[#out + 1] = k end end
  return out
end

local function attr_map(el)
  local m = {}
  for _, a in ipairs(el.attrs) do m[a[1]] = attr_value(a[2]) end
  return m
end

-- Canonical form for comparisons: sorted attributes, merged decoded text, no comments.
local function canon(el, out)
  out = out or {}
  local attrs = {}
  for _, a in ipairs(el.attrs) do attrs[#attrs + 1] = a[1] .. "=" .. string.format("%q", attr_value(a[2])) end
  table.sort(attrs)
  out[#out + 1] = "<" .. el.tag .. " " .. table.concat(attrs, " ") .. ">"
  local text = {}
  local function flush()
    if #text > 0 then out[#out + 1] = string.format("%q", table.concat(text)); text = {} end
  end
  for _, k in ipairs(el.kids) do
    if k.tag then flush(); canon(k, out)
    elseif k.kind == "text" then text[#text + 1] = decode(nl_norm(k.text))
    elseif k.kind == "cdata" then text[#text + 1] = nl_norm(k.text)
    elseif k.kind == "pi" then flush(); out[#out + 1] = "<?" .. k.text .. "?>"
    end
  end
  flush()
  out[#out + 1] = "</" .. el.tag .. ">"
  return out
end
local function canon_str(el) return table.concat(canon(el)) end

-- The text of an element made only of text and CDATA (decoded, newlines normalised), or
-- nil when it has any other child (an element, a comment, a processing instruction).
local function plain_text(el)
  local text = {}
  for _, x in ipairs(el.kids) do
    if x.kind == "text" then text[#text + 1] = decode(nl_norm(x.text))
    elseif x.kind == "cdata" then text[#text + 1] = nl_norm(x.text)
    else return nil end
  end
  return table.concat(text)
end

-- Finds the <sequence>: returns its element, the text it lives in, and the wrapper
-- (the outer text with the sequence replaced by X.MARK), or nil for a plain document.
local function locate(src)
  local tree = parse_xml(src)
  local root = elements(tree)[1]
  if not root then error("no root element") end
  if root.tag == "sequence" then return root, src, nil end
  local function find(el)
    for _, k in ipairs(el.kids) do
      if k.tag == "sequence" then return k, src, k.s, k.e end
      if k.kind == "cdata" and k.text:match("^%s*<sequence") then -- object.xml's Sequence
        local seqel = elements(parse_xml(k.text))[1]
        return seqel, k.text, k.cs + seqel.s - 1, k.cs + seqel.e - 1
      end
      if k.tag then
        local a, b, c, d = find(k)
        if a then return a, b, c, d end
      end
    end
  end
  local seqel, text, s, e = find(root)
  if not seqel then error("no <sequence> in the document") end
  local wrapper = src:sub(1, s - 1) .. X.MARK .. src:sub(e)
  return seqel, text, wrapper
end

-- Whether two document texts are the same document: the sequence compared as canonical
-- XML (attribute order, CR LF and CDATA do not matter; white space text does), the
-- wrapper around it compared as text.
local function equal(a, b)
  local oka, sa, _, wa = pcall(locate, a)
  local okb, sb, _, wb = pcall(locate, b)
  if not (oka and okb) then return false end
  if (wa and nl_norm(wa)) ~= (wb and nl_norm(wb)) then return false end
  return canon_str(sa) == canon_str(sb)
end

X.decode, X.parse, X.nl_norm, X.attr_value = decode, parse_xml, nl_norm, attr_value
X.elements, X.attr_map, X.canon_str, X.plain_text = elements, attr_map, canon_str, plain_text
-- text content escaped as the writer escapes it (CR as a reference, so it survives)
function X.esc_text(s) return (s:gsub("[&<>\r]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ["\r"] = "&#xD;" })) end

X.locate, X.equal = locate, equal

return X
