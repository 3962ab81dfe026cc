-- tsq apply over a folder: copies of the real corpus plus a broken and a read-only file.
local BIN = os.getenv("TSQ_BIN") or "build/bin/tsq"
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

local CORPUS = H.corpus()
local have_corpus = CORPUS ~= nil
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
        -- otherwise the same document, byte for byte: only the planted prefixes differ
        assert.equals(old, (now:gsub("%[R%] ", "")), f)
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

  it("keeps backups of exactly the changed files with --backup", function()
    local dir = make_folder("bak", 20)
    local out, _, rc = tsq("apply", script, dir .. "/999-readonly.xml", dir, "--backup", ".orig", "--continue-on-error")
    assert.equals(1, rc)
    local changed = {}
    for line in out:gmatch("[^\n]+") do
      local f = line:match("^changed .*/([^/]+)$")
      if f then changed[f] = true end
    end
    assert.is_not_nil(next(changed), out)
    local backups = {}
    for _, f in ipairs(ls(dir)) do
      local base = f:match("^(.*)%.orig$")
      if base then
        backups[base] = true
        assert.equals(originals[base], read(dir .. "/" .. f))
        assert.are_not.equal(originals[base], read(dir .. "/" .. base))
      end
    end
    assert.same(changed, backups)
  end)

  it("saves nothing after the first failure, with --jobs 2 as with one job", function()
    local function folder(name)
      local dir = make_folder(name, 40)
      os.remove(dir .. "/000-broken.xml")
      write(dir .. "/025-broken.xml", originals["999-readonly.xml"])
      return dir
    end
    -- the failing file is slow, so that with two jobs the other worker finishes later
    -- files first: they must still not be saved
    local slow = root .. "/slow.lua"
    write(slow, "local restart = assert(loadfile(" .. string.format("%q", script) .. "))()\n" .. [=[
return function(seq, path)
  if path:find("025-broken", 1, true) then
    local t = os.clock() + 0.5
    repeat until os.clock() > t
    error("planted failure")
  end
  return restart(seq, path)
end
]=])
    local d1, d2 = folder("mid1"), folder("mid2")
    local o1, e1, r1 = tsq("apply", slow, d1)
    local o2, e2, r2 = tsq("apply", slow, d2, "--jobs", "2")
    assert.equals(1, r1)
    assert.equals(r1, r2)
    assert.equals(o1:gsub(d1, "D"), (o2:gsub(d2, "D")))
    assert.equals(e1:gsub(d1, "D"), (e2:gsub(d2, "D")))
    assert.same(snapshot(d1), snapshot(d2))
    assert.matches("^failed D/025%-broken%.xml: script error: [^\n]*planted failure\n$", (e1:gsub(d1, "D")))
    -- every file before the broken one done, none after it touched or reported
    local before, after, changed = 0, 0, 0
    for _, f in ipairs(ls(d1)) do
      if f < "025-broken.xml" then
        before = before + 1
        local seq = assert(ts.parse(originals[f], f))
        local want = transform(seq, f) == false and originals[f] or seq:to_xml()
        assert.equals(want, read(d1 .. "/" .. f), f)
        if want ~= originals[f] then changed = changed + 1 end
      elseif f > "025-broken.xml" then
        after = after + 1
        assert.equals(originals[f], read(d1 .. "/" .. f), f)
        assert.is_nil(o1:find(f, 1, true), f)
      end
    end
    if have_corpus then assert.is_true(changed > 0 and after > 0) end
    assert.matches(string.format("\n%d read, %d changed, %d unchanged, 1 failed\n$", before + 1, changed, before - changed),
      "\n" .. o1)
  end)

  it("refuses a bad --jobs with status 2", function()
    for _, j in ipairs { "0", "two", "-1" } do
      local _, err, rc = tsq("apply", script, root, "--jobs", j)
      assert.equals(2, rc)
      assert.equals("tsq apply: --jobs wants a positive integer, not " .. j .. "\n", err)
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

-- What a terminal shows after receiving raw: "\r" returns to the first column, ESC[K erases
-- to the end of the line, "\n" starts the next line.
local function screen(raw)
  local lines, cur, col, i = {}, {}, 1, 1
  while i <= #raw do
    local c = raw:sub(i, i)
    if raw:sub(i, i + 2) == "\27[K" then
      for k = col, #cur do cur[k] = nil end
      i = i + 3
    else
      if c == "\r" then col = 1
      elseif c == "\n" then lines[#lines + 1], cur, col = table.concat(cur), {}, 1
      else cur[col], col = c, col + 1 end
      i = i + 1
    end
  end
  if #cur > 0 then lines[#lines + 1] = table.concat(cur) end
  return lines
end

local function run_shell(cmd)
  local p = io.popen(cmd .. "; echo \"@@$?\"")
  local out = p:read("a")
  p:close()
  local body, rc = out:match("^(.*)@@(%d+)\n$")
  return body, tonumber(rc)
end

describe("tsq apply's output", function()
  local have_script = os.execute("command -v script >/dev/null 2>&1") == true
  local function cmdline(dir, jobs)
    return table.concat({ q(BIN), "apply", q(script), q(dir), "--diff", "--continue-on-error", "--jobs", jobs }, " ")
  end

  it("is plain lines when not on a terminal", function()
    local out = run_shell(cmdline(make_folder("plain"), "2") .. " 2>&1")
    assert.is_nil(out:find("[\r\27]"))
    assert.matches("\n%d+ read, %d+ changed, %d+ unchanged, 2 failed\n$", out)
  end)

  for _, jobs in ipairs { "1", "2" } do
    it("draws a progress bar on a terminal and shows the same lines as without one, --jobs " .. jobs, function()
      if not have_script then
        pending("script(1) from util-linux is not installed")
        return
      end
      local d1, d2 = make_folder("plain" .. jobs), make_folder("tty" .. jobs)
      local plain = run_shell(cmdline(d1, jobs) .. " 2>&1")
      -- script -e: the status of the command; -q: no "Script started" lines
      local raw, rc = run_shell("script -qec " .. q(cmdline(d2, jobs)) .. " /dev/null")
      assert.equals(1, rc)
      assert.matches("\r\27%[K%[#+ *%] %d+/%d+", raw)
      local want = {}
      for l in plain:gsub(d1:gsub("%p", "%%%0"), "D"):gmatch("([^\n]*)\n") do want[#want + 1] = l end
      local got = screen((raw:gsub(d2:gsub("%p", "%%%0"), "D")))
      assert.is_true(#want > (have_corpus and 10 or 2)) -- without the corpus: a broken file and two others
      assert.same(want, got)
    end)
  end
end)
