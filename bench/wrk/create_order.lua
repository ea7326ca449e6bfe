-- POST /orders for a random existing user, with a random valid quantity and amount.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local headers = { ["Content-Type"] = "application/json" }

request = function()
   local body = string.format(
      '{"user_id":%d,"item":"bench item","quantity":%d,"amount_cents":%d}',
      bench.random_user(), math.random(1, 10000), math.random(0, 1000000000))
   return wrk.format("POST", "/orders", headers, body)
end
