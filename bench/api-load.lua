-- wrk script for the service benchmark: each request is made as a random one of the benchmark's
-- accounts, for one of its domains.
--   wrk ... -s bench/api-load.lua URL -- detail|list TARGETS
-- detail: GET /api/v1/domains/{domain}; list: GET /api/v1/domains (the first page, 50 domains).
-- TARGETS holds "token<TAB>domain" lines (bench/seed_store.py writes it).

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
end

local targets = {}
local mode = "detail"
function init(args)
  mode = args[1] or mode
  for line in io.lines(args[2]) do
    local token, domain = line:match("^(%S+)\t(%S+)$")
    if token then
      targets[#targets + 1] = { "Bearer " .. token, domain }
    end
  end
  math.randomseed(os.time() * 100 + (thread_number or 0))
end

function request()
  local target = targets[math.random(#targets)]
  local path = mode == "list" and "/api/v1/domains" or ("/api/v1/domains/" .. target[2])
  return wrk.format("GET", path, { ["Authorization"] = target[1] })
end
