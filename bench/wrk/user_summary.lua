-- GET /users/{id}/summary for a random existing user (about 10 orders each).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

request = function()
   return wrk.format("GET", "/users/" .. bench.random_user() .. "/summary")
end
