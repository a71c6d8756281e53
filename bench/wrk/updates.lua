-- POST /updates/ with a batch of N metrics (wrk ... -s updates.lua URL -- N), half gauges and
-- half counters, like an agent's report; the same names every time (existing metrics).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
   local n = tonumber(args[1]) or 100
   local parts = {}
   for i = 1, n do
      if i % 2 == 0 then
         parts[i] = string.format('{"id":"batch%d","type":"counter","delta":%d}', i, i)
      else
         parts[i] = string.format('{"id":"batch%d","type":"gauge","value":%d.25}', i, i)
      end
   end
   wrk.body = "[" .. table.concat(parts, ",") .. "]"
end
