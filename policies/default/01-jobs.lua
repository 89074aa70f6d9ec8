-- A tiny job dispatcher.
--
-- Each later file registers one field job:
--
--   job{ name = "wifi",
--        on_inform = function(dev, inform) ... end,
--        on_event = function(dev, code, inform) ... end,
--        on_transfer_complete = function(dev, tc) ... end }
--
-- The luacs hooks (on_transfer_complete, on_event, on_inform) call each
-- registered job's function of the same name, in registration order (so in
-- file-name order). Registering a name again replaces that job in place: a
-- later file can swap out a shipped job, or switch it off with
-- job{ name = "wifi" } (no functions).
--
-- One job's error does not stop the others: it is logged with the job's
-- name and recorded as a fault on the device, and the next job runs.
-- (A budget overrun still stops the whole hook: pcall cannot catch it.)

jobs = {}            -- the registered jobs, in order (read-only for others)
tasks = tasks or {}  -- tasks.<name>(dev, args): functions the API can queue

-- Per hook: the functions to call and their jobs' names, built once at
-- registration so a session only walks two flat arrays.
local lists = {
  on_inform = { fns = {}, names = {} },
  on_event = { fns = {}, names = {} },
  on_transfer_complete = { fns = {}, names = {} },
}

local function run(hook, list, dev, a, b)
  local fns, names = list.fns, list.names
  for i = 1, #fns do
    local ok, err = pcall(fns[i], dev, a, b)
    if not ok then
      dev:error("job", names[i], hook .. ":", err)
      dev:fault("job " .. names[i] .. " " .. hook .. ": " .. tostring(err))
    end
  end
end

local dispatch = {
  on_inform = function(dev, inform) run("on_inform", lists.on_inform, dev, inform) end,
  on_event = function(dev, code, inform) run("on_event", lists.on_event, dev, code, inform) end,
  on_transfer_complete = function(dev, tc)
    run("on_transfer_complete", lists.on_transfer_complete, dev, tc)
  end,
}

local function rebuild()
  for hook, list in pairs(lists) do
    list.fns, list.names = {}, {}
    for _, j in ipairs(jobs) do
      if j[hook] then
        list.fns[#list.fns + 1] = j[hook]
        list.names[#list.names + 1] = j.name
      end
    end
  end
  -- Define a luacs hook only once some job needs it (an absent hook costs a
  -- session nothing), and only once (so luacs sees no redefinition).
  if #lists.on_inform.fns > 0 and on_inform ~= dispatch.on_inform then
    on_inform = dispatch.on_inform
  end
  if #lists.on_event.fns > 0 and on_event ~= dispatch.on_event then
    on_event = dispatch.on_event
  end
  if #lists.on_transfer_complete.fns > 0 and on_transfer_complete ~= dispatch.on_transfer_complete then
    on_transfer_complete = dispatch.on_transfer_complete
  end
end

-- Helpers the jobs share (globals of the policy, like `job`).

-- The device runs RouterOS.
function is_mikrotik(dev)
  return dev.manufacturer ~= nil and dev.manufacturer:lower() == "mikrotik"
end

-- The Inform carries the event `code` ("1 BOOT"), in any letter case.
function has_event(inform, code)
  for _, e in ipairs(inform.events) do
    if e == code or e:upper() == code then return true end
  end
  return false
end

function job(spec)
  if type(spec) ~= "table" or type(spec.name) ~= "string" or spec.name == "" then
    error('job{ name = "...", on_inform = fn, ... }: a job needs a name', 2)
  end
  for hook in pairs(lists) do
    if spec[hook] ~= nil and type(spec[hook]) ~= "function" then
      error("job " .. spec.name .. ": " .. hook .. " must be a function", 2)
    end
  end
  local at = #jobs + 1
  for i, j in ipairs(jobs) do
    if j.name == spec.name then at = i end
  end
  jobs[at] = spec
  rebuild()
end
