-- wrk script for the web UI benchmark: pages of one account's domains, signed in.
--   wrk ... -s bench/ui-load.lua URL -- MODE TARGETS COOKIE
-- MODE: list (the first page of 50), search (?q= a random domain's first label), status
-- (?status=partially_verified), page (?after= a random domain: a page deep in the list), setup
-- (a random domain's setup page, planned against DNS), history (its history page), state (its
-- live state: what an open setup page asks every 3 s), poll (the same, each connection waiting
-- 3 s between requests: a crowd of open pages, run beside the others).
-- TARGETS holds "token<TAB>domain" lines (bench/seed_store.py writes it); COOKIE is the session
-- cookie ("senderauth_session=...").

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
end

local domains = {}
local mode = "list"
local cookie = ""
function init(args)
  mode = args[1] or mode
  for line in io.lines(args[2]) do
    local _, domain = line:match("^(%S+)\t(%S+)$")
    if domain then
      domains[#domains + 1] = domain
    end
  end
  cookie = args[3]
  math.randomseed(os.time() * 100 + (thread_number or 0))
end

function request()
  local domain = domains[math.random(#domains)]
  local path
  if mode == "list" then
    path = "/ui/domains"
  elseif mode == "search" then
    path = "/ui/domains?q=" .. domain:match("^[^.]+")
  elseif mode == "status" then
    path = "/ui/domains?status=partially_verified"
  elseif mode == "page" then
    path = "/ui/domains?after=" .. domain
  elseif mode == "setup" then
    path = "/ui/domains/" .. domain
  elseif mode == "state" or mode == "poll" then
    path = "/ui/domains/" .. domain .. "/state"
  else
    path = "/ui/domains/" .. domain .. "/history"
  end
  return wrk.format("GET", path, { ["Cookie"] = cookie })
end

-- An open page asks every 3 s.
function delay()
  if mode == "poll" then
    return 3000
  end
  return 0
end
