-- One OFREP single evaluation per request, over keep-alive connections.
-- FLAG (default new-checkout: a rule with $ref, ends_with and fractional) picks the flag.
wrk.method = "POST"
wrk.path = "/ofrep/v1/evaluate/flags/" .. (os.getenv("FLAG") or "new-checkout")
wrk.body = '{"context":{"targetingKey":"user-42","email":"ann@example.com","plan":"business","appVersion":"4.3.0"}}'
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token then wrk.headers["Authorization"] = "Bearer " .. token end
