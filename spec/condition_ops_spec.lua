-- The condition constructors check their operators when a condition is made, and write the console's
-- spelling; the text form keeps whatever a document stored (evaluating it raises, naming it).
local ts = require "tasksequence"

describe("ts.variable", function()
  it("refuses an operator that is not one, naming the ones there are", function()
    local ok, err = pcall(ts.variable, "OSDBuild", "equal", "1")
    assert.is_false(ok)
    assert.matches("unknown operator 'equal'", err)
    assert.matches("greaterEqual", err)
  end)

  it("accepts operators in any case and writes the console's spelling", function()
    assert.equals('OSDBuild equals "1"', tostring(ts.variable("OSDBuild", "EQUALS", "1")))
    assert.equals('OSDBuild greaterEqual "6"', tostring(ts.variable("OSDBuild", "greaterequal", "6")))
    assert.equals("OSDBuild notExists", tostring(ts.variable("OSDBuild", "NOTEXISTS")))
  end)

  it("leaves the text form as permissive as the documents it must represent", function()
    local c = ts.condition 'OSDBuild equal "1"'
    assert.equals('OSDBuild equal "1"', tostring(c))
    local ok, err = pcall(c.evaluate, c, ts.environment { variables = { OSDBuild = "1" } })
    assert.is_false(ok)
    assert.matches("unknown operator 'equal'", err)
  end)
end)

describe("ts.file, ts.folder, ts.registry and ts.software", function()
  it("refuse an operator their class does not take, naming the ones it does", function()
    local cases = {
      { ts.file, { Path = "C:\\x", Version = "1", VersionOperator = "like" }, "unknown VersionOperator 'like' in file" },
      { ts.file, { Path = "C:\\x", DateTime = "20200101000000.000000+000", DateTimeOperator = "exists" },
        "unknown DateTimeOperator 'exists' in file" },
      { ts.folder, { Path = "C:\\x", DateTime = "20200101000000.000000+000", DateTimeOperator = "between" },
        "unknown DateTimeOperator 'between' in folder" },
      { ts.registry, { KeyPath = "HKLM\\K", Value = "V", Operator = "like" }, "unknown Operator 'like' in registry" },
      { ts.software, { Operator = "SomeVersion", ProductCode = "{P}" }, "valid: AnyVersion, ThisVersion" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1], c[2])
      assert.is_false(ok)
      assert.matches(c[3], err, 1, true)
    end
  end)

  it("accept operators in any case and write the console's spelling (nonExists as the SDK spells it)", function()
    assert.equals('file "C:\\\\x" version greaterEqual "1"',
      tostring(ts.file { Path = "C:\\x", Version = "1", VersionOperator = "GREATEREQUAL" }))
    assert.equals('registry "HKLM\\\\K" "V" notExists', tostring(ts.registry { KeyPath = "HKLM\\K", Value = "V", Operator = "NotExists" }))
    assert.equals('registry "HKLM\\\\K" "V" nonExists', tostring(ts.registry { KeyPath = "HKLM\\K", Value = "V", Operator = "nonexists" }))
    assert.equals('software AnyVersion upgrade "{U}"', tostring(ts.software { Operator = "anyversion", UpgradeCode = "{U}" }))
    local c = ts.software { Operator = "thisVersion", ProductCode = "{P}", Version = "1.0" }
    assert.equals("ThisVersion", c.Operator)
  end)
end)
