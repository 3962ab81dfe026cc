-- tsq apply over a folder: copies of the real corpus plus a broken and a read-only file.
local BIN = os.getenv("TSQ_BIN") or "build/bin/tsq"
local SHARED = os.getenv("TSQ_SHARED")
local ts = require "tasksequence"

local H = require "helpers"
local q, tsq = H.q, H.tsq

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function ls(dir)
  local p = io.popen("ls -1 " .. q(dir))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

-- The transformation: "Restart" steps get a prefix; documents without one are left alone.
local SCRIPT = [[
return function(seq, path)
  local n = 0
  for step in seq:steps() do
    if (step.Name or ""):find("Restart", 1, true) then
      step.Name = "[R] " .. step.Name
      n = n + 1
    end
  end
  if n == 0 then return false end
end
]]
local transform = load(SCRIPT)()

local CORPUS = SHARED and SHARED .. "/corpus/real"
local have_corpus = CORPUS and read(CORPUS .. "/MANIFEST.tsv") ~= nil
local originals = {}
local root

-- A fresh folder: 000-broken.xml, the corpus (some of it with a small sample), 999-readonly.xml
local function make_folder(name, sample)
  local dir = root .. "/" .. name
  os.execute("mkdir -p " .. q(dir))
  write(dir .. "/000-broken.xml", "<sequence version=\"3.10\"><group name=\"x\"></sequence>")
  local files = have_corpus and ls(CORPUS) or {}
  local n = 0
  for _, f in ipairs(files) do
    if f:match("%.xml$") and (not sample or n < sample) then
      local text = originals[f] or read(CORPUS .. "/" .. f)
      originals[f] = text
      write(dir .. "/" .. f, text)
      n = n + 1
    end
  end
  if not have_corpus then
    local doc = [[<sequence version="3.10">
  <step type="SMS_TaskSequence_RebootAction" name="Restart Computer" description="" runIn="WinPEandFullOS" successCodeList="0">
    <action>smsboot.exe /target:HD</action>
  </step>
</sequence>
]]
    originals["100-restart.xml"] = doc
    write(dir .. "/100-restart.xml", doc)
    originals["101-plain.xml"] = (doc:gsub("Restart Computer", "Reboot"))
    write(dir .. "/101-plain.xml", originals["101-plain.xml"])
  end
  -- read-only: a document the script would change
  local ro = [[<sequence version="3.10">
  <step type="SMS_TaskSequence_RebootAction" name="Restart here" description="" runIn="WinPEandFullOS" successCodeList="0">
    <action>smsboot.exe /target:HD</action>
  </step>
</sequence>
]]
  originals["999-readonly.xml"] = ro
  write(dir .. "/999-readonly.xml", ro)
  os.execute("chmod 444 " .. q(dir .. "/999-readonly.xml"))
  return dir
end

local function snapshot(dir)
  local s = {}
  for _, f in ipairs(ls(dir)) do s[f] = read(dir .. "/" .. f) end
  return s
end

local script
setup(function()
  root = os.tmpname()
  os.remove(root)
  os.execute("mkdir -p " .. q(root))
  script = root .. "/restart.lua"
  write(script, SCRIPT)
end)
teardown(function() os.execute("chmod -R u+w " .. q(root) .. "; rm -rf " .. q(root)) end)

describe("tsq apply", function()
  it("transforms every good file, reports the broken ones and exits 1", function()
    local dir = make_folder("all")
    local out, err, rc = tsq("apply", script, dir, "--continue-on-error")
    assert.equals(1, rc)
    assert.matches("failed [^\n]*000%-broken%.xml: ", err)
    assert.matches("failed [^\n]*999%-readonly%.xml: read%-only file", err)
    local changed, unchanged = 0, 0
    for f, old in pairs(originals) do
      local now = read(dir .. "/" .. f)
      if f ~= "999-readonly.xml" then
        -- the same transformation done here must give the same document
        local seq = assert(ts.parse(old, f))
        local keep = transform(seq, f)
        local want = keep == false and old or seq:to_xml()
        assert.equals(want, now, f)
        if want ~= old then
          changed = changed + 1
          assert.matches("\nchanged [^\n]*" .. f:gsub("%p", "%%%0"), "\n" .. out)
        else
          unchanged = unchanged + 1
        end
      else
        assert.equals(old, now)
      end
    end
    assert.is_true(changed > 0)
    assert.equals("000-broken.xml", ls(dir)[1])
    assert.equals("<sequence version=\"3.10\"><group name=\"x\"></sequence>", read(dir .. "/000-broken.xml"))
    local total = 0
    for _ in pairs(originals) do total = total + 1 end
    assert.matches(string.format("\n%d read, %d changed, %d unchanged, 2 failed\n$", total + 1, changed, unchanged), "\n" .. out)
  end)

  it("stops at the first failure without --continue-on-error", function()
    local dir = make_folder("stop", 3)
    local before = snapshot(dir)
    local out, _, rc = tsq("apply", script, dir)
    assert.equals(1, rc)
    assert.matches("^1 read, 0 changed, 0 unchanged, 1 failed\n$", out)
    assert.same(before, snapshot(dir))
  end)

  it("changes nothing with --dry-run and shows the changes with --diff", function()
    local dir = make_folder("dry")
    local before = snapshot(dir)
    local out, _, rc = tsq("apply", script, dir, "--dry-run", "--diff", "--continue-on-error")
    assert.equals(1, rc)
    assert.same(before, snapshot(dir))
    assert.matches("would change ", out)
    assert.matches('\n  = renamed [^\n]*%[R%] ', out)
    assert.matches("would change, %d+ unchanged", out)
  end)

  it("gives the same results and files with --jobs 2", function()
    local d1, d2 = make_folder("j1"), make_folder("j2")
    local o1, e1, r1 = tsq("apply", script, d1, "--continue-on-error")
    local o2, e2, r2 = tsq("apply", script, d2, "--continue-on-error", "--jobs", "2")
    assert.equals(r1, r2)
    assert.equals(o1:gsub(d1, "D"), (o2:gsub(d2, "D")))
    assert.equals(e1:gsub(d1, "D"), (e2:gsub(d2, "D")))
    assert.same(snapshot(d1), snapshot(d2))
  end)

  it("keeps backups of changed files with --backup", function()
    local dir = make_folder("bak", 5)
    local _, _, rc = tsq("apply", script, dir .. "/999-readonly.xml", dir, "--backup", ".orig", "--continue-on-error")
    assert.equals(1, rc)
    for _, f in ipairs(ls(dir)) do
      local base = f:match("^(.*)%.orig$")
      if base then assert.equals(originals[base], read(dir .. "/" .. f)) end
    end
  end)

  it("exits 0 and saves nothing when the script returns false everywhere", function()
    local dir = root .. "/false"
    os.execute("mkdir -p " .. q(dir))
    write(dir .. "/a.xml", '<sequence version="3.10"/>\n')
    local s = root .. "/no.lua"
    write(s, "return function() return false end")
    local out, _, rc = tsq("apply", s, dir)
    assert.equals(0, rc)
    assert.equals("unchanged " .. dir .. "/a.xml\n1 read, 0 changed, 1 unchanged, 0 failed\n", out)
  end)

  it("reports a script error with the file's path and leaves the file alone", function()
    local dir = root .. "/err"
    os.execute("mkdir -p " .. q(dir))
    write(dir .. "/a.xml", '<sequence version="3.10"/>\n')
    local s = root .. "/err.lua"
    write(s, "return function(seq, path) error('nope') end")
    local _, err, rc = tsq("apply", s, dir)
    assert.equals(1, rc)
    assert.matches("failed " .. dir:gsub("%p", "%%%0") .. "/a%.xml: script error: [^\n]*nope", err)
    assert.equals('<sequence version="3.10"/>\n', read(dir .. "/a.xml"))
  end)

  it("refuses a script that returns no function", function()
    local s = root .. "/bad.lua"
    write(s, "return 1")
    local _, err, rc = tsq("apply", s, root)
    assert.equals(2, rc)
    assert.matches("must return function%(seq, path%)", err)
  end)
end)
