-- POST /value/ asking for one gauge.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"id":"x","type":"gauge"}'
