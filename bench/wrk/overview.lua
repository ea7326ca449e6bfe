-- GET /overview?limit=10: the first 10 users and the first 10 orders.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

request = function()
   return wrk.format("GET", "/overview?limit=10")
end
