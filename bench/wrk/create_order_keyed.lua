-- POST /orders as create_order.lua, each request with its own Idempotency-Key: what a
-- client that makes every create safe to retry costs (README, "Safe retries").
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local sent = 0
local run = string.format("%d-%d", os.time(), math.random(0, 2147483647))

request = function()
   sent = sent + 1
   local headers = {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = string.format("bench-%s-%d-%d", run, thread_no or 0, sent),
   }
   local body = string.format(
      '{"user_id":%d,"item":"bench item","quantity":%d,"amount_cents":%d}',
      bench.random_user(), math.random(1, 10000), math.random(0, 1000000000))
   return wrk.format("POST", "/orders", headers, body)
end
