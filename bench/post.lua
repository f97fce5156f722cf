-- bench/post.lua: makes wrk send POST requests with the JSON body in the
-- environment variable WRK_BODY (bench/gateway.sh sets it). Headers such as
-- Authorization come from wrk's -H flags.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
