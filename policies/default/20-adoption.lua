-- (a) Adoption: new devices wait for an operator, adopted ones are
-- provisioned, and a factory-reset one is provisioned again on its own.
--
-- Tags:
--   pending           seen for the first time (or never tagged), not adopted yet
--   adopt             set by an operator (API / web page): adopt this device
--   provisioned       its identity and configuration were pushed
--   provision_failed  the push failed; retried in the next sessions, up to
--                     settings.adoption.max_attempts failures in a row
--
-- An operator adopts a device either with the tag `adopt`, or with the task
-- tasks.adopt(dev, { identity = "...", config = { ... } }). The identity and
-- config are remembered in the summary (fields identity, config) so that a
-- 0 BOOTSTRAP (factory reset) of a provisioned device re-provisions it from
-- them: no truck roll.
--
-- What is pushed:
--   MikroTik: one RouterOS script as a .alter file (dev:alter): system
--     identity, the tr069-client periodic inform interval, NTP and DNS
--     servers. Its result comes back as a TransferComplete with a command key
--     "alter-..." (usually in the next session); a failure there takes the tag
--     provisioned away again.
--   others: SetParameterValues (dev:set) of ManagementServer.PeriodicInform*
--     and DeviceInfo.ProvisioningCode, as configured. The identity is only
--     remembered: TR-098/TR-181 have no standard parameter for it.
--
-- Settings: settings.adoption, defaults below; override single keys in a
-- later file (settings.adoption.auto = true). A task's config may override
-- periodic_inform_interval, provisioning_code, ntp_servers and dns_servers
-- for one device. Stands alone: copy this file into any policy folder.

local cfg = luacs.settings("adoption", {
  -- true: adopt every new (or pending) device at once, with no operator.
  auto = false,
  -- Pushed on adoption (seconds). false: leave the device's own interval.
  periodic_inform_interval = 3600,
  -- Non-MikroTik devices: DeviceInfo.ProvisioningCode set on adoption
  -- (unset: not set). MikroTik devices get a RouterOS script instead.
  -- provisioning_code = "ISP-1",
  -- MikroTik only, unset: leave as is. A list or a comma-separated string:
  -- ntp_servers = { "0.pool.ntp.org", "1.pool.ntp.org" } -> /system ntp client
  -- dns_servers = { "192.0.2.53" } -> /ip dns set servers=...
  -- Failed provisioning pushes of one device before the job stops retrying
  -- (the device keeps the tag provision_failed; tag it `adopt` to start over).
  max_attempts = 3,
})

local CONFIG_KEYS = {
  periodic_inform_interval = true, provisioning_code = true,
  ntp_servers = true, dns_servers = true,
}

-- A RouterOS string literal: "..." with \ " $ ? escaped, and control
-- characters written as \HH, so a value can never end the string or run
-- a command.
local function ros_quote(s)
  return '"' .. tostring(s):gsub('[\\"$?%c]', function(c)
    if c:match("%c") then return string.format("\\%02X", c:byte()) end
    return "\\" .. c
  end) .. '"'
end

-- { "a", "b" } or "a, b" -> { "a", "b" }
local function list_of(v)
  if type(v) == "string" then
    local out = {}
    for item in v:gmatch("[^,%s]+") do out[#out + 1] = item end
    return out
  end
  return v
end

local function seconds(v)
  local n = math.tointeger(tonumber(v))
  if not n or n < 1 then error("periodic_inform_interval must be a whole number of seconds, got " .. tostring(v)) end
  return n
end

-- settings.adoption, with the device's own config on top.
local function effective(config)
  local base, out = cfg, {}
  for k in pairs(CONFIG_KEYS) do
    if config[k] ~= nil then out[k] = config[k] else out[k] = base[k] end
  end
  return out
end

local function render_script(dev, identity, cfg)
  local lines = {
    "# luacs: provisioning of " .. dev.id,
    "/system identity set name=" .. ros_quote(identity),
  }
  if cfg.periodic_inform_interval then
    lines[#lines + 1] = string.format(
      "/tr069-client set periodic-inform-enabled=yes periodic-inform-interval=%ds",
      seconds(cfg.periodic_inform_interval))
  end
  local ntp = list_of(cfg.ntp_servers)
  if ntp and #ntp > 0 then
    local version = dev:param("Device.DeviceInfo.SoftwareVersion") or ""
    if luacs.version_compare(version, "7") >= 0 then
      lines[#lines + 1] = "/system ntp client set enabled=yes servers=" .. ros_quote(table.concat(ntp, ","))
    else
      -- RouterOS 6 (SNTP client): two IPv4 address slots, and host names apart.
      local ips, names = {}, {}
      for _, server in ipairs(ntp) do
        if server:match("^%d+%.%d+%.%d+%.%d+$") then ips[#ips + 1] = server else names[#names + 1] = server end
      end
      local line = "/system ntp client set enabled=yes"
      if ips[1] then line = line .. " primary-ntp=" .. ros_quote(ips[1]) end
      if ips[2] then line = line .. " secondary-ntp=" .. ros_quote(ips[2]) end
      if names[1] then line = line .. " server-dns-names=" .. ros_quote(table.concat(names, ",")) end
      lines[#lines + 1] = line
    end
  end
  local dns = list_of(cfg.dns_servers)
  if dns and #dns > 0 then
    lines[#lines + 1] = "/ip dns set servers=" .. ros_quote(table.concat(dns, ","))
  end
  return table.concat(lines, "\n") .. "\n"
end

local function parameter_values(dev, cfg)
  local root, values = dev.root, {}
  if cfg.periodic_inform_interval then
    values[root .. ".ManagementServer.PeriodicInformEnable"] = true
    values[root .. ".ManagementServer.PeriodicInformInterval"] =
      { seconds(cfg.periodic_inform_interval), "unsignedInt" }
  end
  if cfg.provisioning_code then
    values[root .. ".DeviceInfo.ProvisioningCode"] = tostring(cfg.provisioning_code)
  end
  return values
end

local function fault_text(f)
  if type(f) ~= "table" then return tostring(f) end
  return tostring(f.code) .. " " .. tostring(f.string)
end

local function remembered_config(dev)
  local s = dev:summary()
  if s.config then
    local ok, t = pcall(luacs.json_decode, s.config)
    if ok and type(t) == "table" then return t end
  end
  return {}
end

-- The sessions (by their `dev` handle, valid for one session only) in which
-- a push failed: on_inform then leaves the retry to the next session, so a
-- failure reported by a TransferComplete or by the 0 BOOTSTRAP push is seen
-- as provision_failed, not pushed again at once. Weak keys: an entry goes
-- with its session.
local failed_in_session = setmetatable({}, { __mode = "k" })

local function failed(dev, message)
  failed_in_session[dev] = true
  local attempts = (dev:summary().provision_attempts or 0) + 1
  dev:untag("provisioned")
  dev:tag("provision_failed")
  dev:summary{ provision_attempts = attempts }
  dev:fault(message .. " (attempt " .. attempts .. ")")
end

-- Pushes the remembered identity and config. Returns true and, for
-- MikroTik, the command key of the script; or nil and a message.
local function provision(dev)
  local identity = dev:summary().identity or dev.serial
  local cfg = effective(remembered_config(dev))

  local ok, key, fault
  if dev.is_mikrotik then
    -- dev:alter raises an error for a script it refuses (over 1 MiB): a failure too.
    ok, key, fault = pcall(dev.alter, dev, render_script(dev, identity, cfg))
    if not ok then fault = key; key = nil end
    ok = key ~= nil
  else
    local sent
    sent, fault = dev:set(parameter_values(dev, cfg), { force = true })
    ok = sent ~= nil
  end

  dev:untag("adopt")
  dev:untag("pending")
  if not ok then
    local message = "provisioning of " .. identity .. " failed: " .. fault_text(fault)
    failed(dev, message)
    return nil, message
  end
  dev:untag("provision_failed")
  dev:tag("provisioned")
  if key then
    -- Applied later by the device; its TransferComplete settles it.
    dev:log("provisioning", identity, "pushed as", key)
  else
    dev:summary{ provision_attempts = 0 }
    dev:log("provisioned", identity)
  end
  return true, key
end

-- Remembers identity and config, then provisions.
local function adopt(dev, identity, config)
  dev:summary{
    identity = identity,
    config = luacs.json_encode(config),
    provision_attempts = 0,
  }
  return provision(dev)
end

local function on_inform(dev)
  if dev:has_tag("adopt") then
    adopt(dev, dev:summary().identity or dev.serial, remembered_config(dev))
    return
  end
  if dev:has_tag("provisioned") then return end  -- the common case

  if dev:has_tag("provision_failed") then
    if failed_in_session[dev] then return end  -- failed just now: next session
    local attempts = dev:summary().provision_attempts or 0
    if attempts < (cfg.max_attempts or 0) then provision(dev) end
    return
  end

  local pending = dev:has_tag("pending")
  if pending or dev.is_new or #dev:tags() == 0 then
    if cfg.auto then
      adopt(dev, dev:summary().identity or dev.serial, remembered_config(dev))
    elseif not pending then
      dev:tag("pending")
      dev:log("new device: pending adoption")
    end
  end
end

-- 0 BOOTSTRAP: the device lost its configuration (factory reset, new ACS
-- URL). Provision it again from what was remembered at adoption.
local function on_event(dev, code)
  if code ~= "0 BOOTSTRAP" and code:upper() ~= "0 BOOTSTRAP" then return end
  if not dev:has_tag("provisioned") then return end
  dev:log("0 BOOTSTRAP of a provisioned device: provisioning it again")
  provision(dev)
end

-- The result of a provisioning script. Only a device this job marked
-- provisioned is concerned: another job's alter- script is not ours to judge.
local function on_transfer_complete(dev, tc)
  local key = tc.command_key or ""
  if key:sub(1, 6) ~= "alter-" or not dev:has_tag("provisioned") then return end
  if tc.ok then
    dev:summary{ provision_attempts = 0 }
    dev:log("configuration script", key, "applied")
  else
    failed(dev, string.format("configuration script %s failed: %s %s",
                              key, tostring(tc.fault_code), tostring(tc.fault_string or "")))
  end
end

luacs.job{
  name = "adoption",
  on_inform = on_inform,
  on_event = on_event,
  on_transfer_complete = on_transfer_complete,
}

-- The operator's "Adopt" button: a task named tasks.adopt with JSON args
-- { "identity": "shop-042", "config": { "dns_servers": ["192.0.2.53"] } }.
-- Both are optional: identity defaults to the remembered one, then to the
-- serial number; config to the remembered one. Returns the identity and, for
-- MikroTik, the command key of the pushed script; fails (task error) when
-- the push is refused.
tasks = tasks or {}
function tasks.adopt(dev, args)
  args = args or {}
  local identity = args.identity
  if identity == nil then identity = dev:summary().identity or dev.serial end
  if type(identity) ~= "string" or identity == "" or #identity > 255 then
    error("tasks.adopt: identity must be a string of 1..255 characters")
  end
  local config = args.config
  if config == nil then config = remembered_config(dev) end
  if type(config) ~= "table" then error("tasks.adopt: config must be an object") end
  for k in pairs(config) do
    if not CONFIG_KEYS[k] then error("tasks.adopt: unknown config key " .. tostring(k)) end
  end
  if config.periodic_inform_interval ~= nil then seconds(config.periodic_inform_interval) end

  local ok, detail = adopt(dev, identity, config)
  if not ok then error(detail) end
  return { identity = identity, command_key = detail }
end
