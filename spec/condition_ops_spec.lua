-- ts.variable checks its operator when the condition is made, and writes the console's
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
