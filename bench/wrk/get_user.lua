-- GET /users/{id} for a random existing user.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

request = function()
   return wrk.format("GET", "/users/" .. bench.random_user())
end
