-- POST /update/ with one JSON gauge.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"id":"x","type":"gauge","value":1.5}'
