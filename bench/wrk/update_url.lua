-- POST /update/gauge/x/1.5: the URL form, no body.
wrk.method = "POST"
