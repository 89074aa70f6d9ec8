-- (d) Data-model normalisation: one summary per device, whatever its data
-- model (TR-098 "InternetGatewayDevice." or TR-181 "Device.").
--
-- Summary fields (dev:summary(), shown by the API and the web page):
--   serial            the SerialNumber of the Inform's DeviceId
--   software_version  DeviceInfo.SoftwareVersion (sent in every Inform)
--   wan_ip            an ExternalIPAddress the Inform carries (TR-098), else
--                     the host of ManagementServer.ConnectionRequestURL
--   model             DeviceInfo.ModelName, else the DeviceId ProductClass
--   mac               see READ below, written AA:BB:CC:DD:EE:FF
--   ssid              the first SSID
--
-- Settings: none. Stands alone: copy this file into any policy folder.
--
-- Cost: serial, software_version and wan_ip come from the Inform itself, so a
-- periodic Inform of a known device costs no RPC. model, mac and ssid take a
-- GetParameterValues: at most one dev:get per session, only on 0 BOOTSTRAP or
-- 1 BOOT or while the summary is still empty, and only for fields neither the
-- summary nor the stored parameters hold yet. On 0 BOOTSTRAP (factory reset)
-- stored values are stale, so all three are read again.
--
-- Why wan_ip is not Device.IP.Interface.1.IPv4Address.1.IPAddress: which
-- IP.Interface is the WAN differs per device (on the TP-Link EC220 of the
-- corpus, Interface.1 is the LAN at 192.168.0.1 and the PPPoE WAN is
-- Interface.3). The ConnectionRequestURL, a forced Inform parameter, carries
-- the address the device listens on for the ACS, which is its WAN address
-- when the ACS is reached over the WAN. (Not in the corpus EC220 dump: its
-- URL holds the LAN address 192.168.0.1, so that device's wan_ip reads
-- 192.168.0.1.)

-- Parameters read for model, mac and ssid, per data model, first found wins.
-- Checked against the full dumps in corpus/datamodels/ (Huawei BM632w for
-- TR-098, TP-Link EC220-G5 for TR-181) and the MikroTik notes: the EC220 has
-- no Ethernet.Interface.{i}.MACAddress, hence Ethernet.Link.1 as second
-- choice. A name the device lacks is simply missing from the answer.
local READ = {
  Device = {
    { "model", { "Device.DeviceInfo.ModelName" } },
    { "mac", { "Device.Ethernet.Interface.1.MACAddress", "Device.Ethernet.Link.1.MACAddress" } },
    { "ssid", { "Device.WiFi.SSID.1.SSID" } },
  },
  InternetGatewayDevice = {
    { "model", { "InternetGatewayDevice.DeviceInfo.ModelName" } },
    { "mac", {
      "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress",
      "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1.MACAddress",
    } },
    { "ssid", { "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID" } },
  },
}

-- Placeholder values devices report for "nothing".
local EMPTY = { [""] = true, ["0.0.0.0"] = true, ["::"] = true, ["00:00:00:00:00:00"] = true }

-- "00e04c6a1b2c" or "00-E0-4C-6A-1B-2C" -> "00:E0:4C:6A:1B:2C"; other shapes
-- are kept as sent.
local function mac_form(v)
  local hex = v:gsub("[^%x]", "")
  if #hex ~= 12 then return v end
  return (hex:upper():gsub("%x%x", "%0:"):sub(1, -2))
end

local function clean(key, v)
  if v == nil or EMPTY[v] then return nil end
  if key == "mac" then return mac_form(v) end
  return v
end

-- The first of `names` with a useful value in `values` (a table) or, when
-- values is nil, among what the device is known to have (dev:param).
local function first(dev, key, names, values)
  for _, name in ipairs(names) do
    local v
    if values then v = values[name] else v = dev:param(name) end
    v = clean(key, v)
    if v then return v end
  end
end

local function wan_ip(inform, root)
  -- TR-098 CPEs usually force an ExternalIPAddress into the Inform, at a
  -- path of their choosing (WANDevice.3...WANIPConnection.2, even a bare
  -- ".ExternalIPAddress" on Thomson).
  for name, value in pairs(inform.params) do
    if name:sub(-17) == "ExternalIPAddress" and not EMPTY[value] then return value end
  end
  local url = inform.params[root .. ".ManagementServer.ConnectionRequestURL"]
  if url then
    local host = url:match("^%a+://%[([^%]]+)%]") or url:match("^%a+://([^/:?#]+)")
    if host and not EMPTY[host] then return host end
  end
end

-- Adds key = value to the pending update when it changes the summary;
-- returns the update (created on first use, so an unchanged device builds
-- no table).
local function put(update, have, key, value)
  if value ~= nil and have[key] ~= value then
    update = update or {}
    update[key] = value
  end
  return update
end

local function normalise(dev, inform)
  local root = dev.root
  local read = READ[root]
  if not read then return end
  local have = dev:summary()

  -- From the Inform: free.
  local update = put(nil, have, "serial", dev.serial)
  update = put(update, have, "software_version",
               clean("software_version", inform.params[root .. ".DeviceInfo.SoftwareVersion"]))
  update = put(update, have, "wan_ip", wan_ip(inform, root))

  -- The rest: from what is known, else one dev:get when allowed.
  local bootstrap = inform:has_event("0 BOOTSTRAP")
  local may_read = bootstrap or inform:has_event("1 BOOT") or next(have) == nil
  local wanted, want_fields
  for _, field in ipairs(read) do
    local key, names = field[1], field[2]
    local missing = have[key] == nil or have[key] == ""
    local known = not bootstrap and missing and first(dev, key, names)
    if known then
      update = put(update, have, key, known)
    elseif may_read and (bootstrap or missing) then
      wanted, want_fields = wanted or {}, want_fields or {}
      want_fields[#want_fields + 1] = field
      for _, name in ipairs(names) do wanted[#wanted + 1] = name end
    end
  end

  if wanted then
    local got, fault = dev:get(wanted)
    if not got then
      dev:warn("normalise: reading", #wanted, "parameters failed:", fault and fault.code, fault and fault.string)
      got = {}
    end
    for _, field in ipairs(want_fields) do
      update = put(update, have, field[1], first(dev, field[1], field[2], got))
    end
    -- A device with no ModelName is summarised by its ProductClass.
    if (have.model == nil or have.model == "") and not (update and update.model) then
      update = put(update, have, "model", clean("model", dev.product_class))
    end
  end

  if update then dev:summary(update) end
end

luacs.job{ name = "normalise", on_inform = normalise }
