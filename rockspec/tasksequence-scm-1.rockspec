-- luarocks --lua-version=5.4 make rockspec/tasksequence-scm-1.rockspec   (offline, from the checkout)
rockspec_format = "3.0"
package = "tasksequence"
version = "scm-1"
source = { url = "git+file:///dev/null" } -- built from the checkout with `luarocks make`
description = {
  summary = "ConfigMgr / MDT task sequences: object model, conditions, engine, lossless XML",
  detailed = [[
A C core with a Lua 5.4 binding: read and write task sequence XML losslessly (plain
<sequence>, console export object.xml, SmsTaskSequencePackage), typed properties for every
built-in step class, condition evaluation against a described machine, and an execution
engine that produces SMS_TaskSequenceExecutionStatus records.]],
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = { LIBXML2 = { header = "libxml2/libxml/parser.h" } }
build = {
  type = "make",
  build_target = "rock",
  build_variables = { CFLAGS = "$(CFLAGS)", LUA_INCDIR = "$(LUA_INCDIR)" },
  install_target = "rock-install",
  install_variables = { INST_LIBDIR = "$(LIBDIR)", INST_LUADIR = "$(LUADIR)" },
}
