-- helpers for the busted specs of the Lua binding
local H = {}

-- The tsq program (TSQ_BIN, default build/bin/tsq) and shell quoting for running it.
H.BIN = os.getenv("TSQ_BIN") or "build/bin/tsq"
function H.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs tsq with args; returns stdout, stderr, exit status.
function H.tsq(...)
  local args = {}
  for i, a in ipairs { ... } do args[i] = H.q(a) end
  local err = os.tmpname()
  local p = io.popen(H.q(H.BIN) .. " " .. table.concat(args, " ") .. " 2>" .. err .. "; echo \"@@$?\"")
  local out = p:read("a")
  p:close()
  local f = io.open(err, "rb")
  local e = f:read("a")
  f:close()
  os.remove(err)
  local body, rc = out:match("^(.*)@@(%d+)\n$")
  return body, e, tonumber(rc)
end

-- The message of the error f raises, without the "file:line: " position.
function H.errmsg(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, got none")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

-- The full message (with position) f raises.
function H.rawerr(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, got none")
  return tostring(err)
end

function H.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

function H.rm_rf(p) os.execute("rm -rf '" .. p .. "'") end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function H.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

function H.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

function H.listdir(dir)
  local out = {}
  local p = io.popen("ls -A '" .. dir .. "'")
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

-- The shared corpus directory, or nil when it is not available.
function H.corpus()
  local shared = os.getenv("TSQ_SHARED") or "../shared"
  local dir = shared .. "/corpus/real"
  if H.exists(dir .. "/MANIFEST.tsv") then return dir end
  return nil
end

-- describe(name, body) over the shared corpus: body(dir) when it is there, else one pending
-- test that says why (every spec of the real documents starts the same way).
function H.describe_corpus(name, body)
  local busted = require "busted" -- the spec files' describe, it and pending
  local dir = H.corpus()
  busted.describe(name, function()
    if not dir then
      busted.pending("needs the corpus (set TSQ_SHARED to the shared folder)")
      return
    end
    body(dir)
  end)
end

function H.corpus_files()
  local dir = H.corpus()
  if not dir then return {} end
  local out = {}
  for _, n in ipairs(H.listdir(dir)) do
    if n:match("%.xml$") then out[#out + 1] = dir .. "/" .. n end
  end
  table.sort(out)
  return out
end

-- Parses XML with LuaExpat when installed: returns a tree of { tag =, attr = { name = value }, [i] = child }.
function H.lxp_parse(text)
  local ok, lxp = pcall(require, "lxp")
  if not ok then return nil, "lxp not installed" end
  local root = { tag = "#root" }
  local stack = { root }
  local p = lxp.new {
    StartElement = function(_, name, attr)
      local el = { tag = name, attr = {}, text = "" }
      for k, v in pairs(attr) do if type(k) == "string" then el.attr[k] = v end end
      local top = stack[#stack]
      top[#top + 1] = el
      stack[#stack + 1] = el
    end,
    EndElement = function() stack[#stack] = nil end,
    CharacterData = function(_, s) local top = stack[#stack]; top.text = (top.text or "") .. s end,
  }
  local r, msg, line, col = p:parse(text)
  if r then r, msg, line, col = p:parse() end
  p:close()
  if not r then return nil, ("%s at %s:%s"):format(msg, line, col) end
  return root[1]
end

-- every element of an lxp tree, depth first
function H.elements(el, out)
  out = out or {}
  out[#out + 1] = el
  for _, c in ipairs(el) do H.elements(c, out) end
  return out
end

return H
