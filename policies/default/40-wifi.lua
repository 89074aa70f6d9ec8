-- (c) Wi-Fi: a test SSID in access-point mode, for bench and field tests.
--
-- Opt-in: runs for every device when settings.wifi.test_ssid is true, else
-- only for devices tagged wifi_test.
--
-- The SSID is "test_" followed by the last five hex digits of the device's
-- MAC address (summary field mac, from 10-normalise.lua), separators
-- removed, upper case: MAC 4C:5E:0C:12:AB:CD -> "test_2ABCD". Five digits
-- keep the name short, and the tail of a MAC is what differs between
-- devices of one batch, so two test devices on one bench will not clash.
-- A device whose MAC is not known yet is skipped until it is.
--
-- How:
--   MikroTik: a .alter script (command key "wifi-<ssid>")
--     /interface wireless set [ find default-name=wlan1 ] mode=ap-bridge ssid="test_XXXXX" disabled=no
--     pushed only when the summary's ssid differs (the summary is updated
--     when the script is sent). The legacy `wireless` package only: devices
--     with the newer `wifi` (wifiwave2/wifi-qcom) package reject the script.
--   TR-181: Device.WiFi.SSID.1.SSID, Device.WiFi.SSID.1.Enable,
--     Device.WiFi.AccessPoint.1.Enable through dev:set
--   TR-098: InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID / .Enable
--   dev:set only sends what differs from the known values (so, once done,
--   nothing); on 0 BOOTSTRAP it sends everything, as the device was reset.
--
-- Tag wifi_failed: the push failed (fault recorded); not retried until an
-- operator removes the tag.

-- Settings: settings.wifi, defaults below; override single keys in a later
-- file (settings.wifi.test_ssid = true). Stands alone: copy this file into
-- any policy folder.
local wifi = luacs.settings("wifi", {
  -- true: every device gets the test SSID. false: only devices tagged wifi_test.
  test_ssid = false,
  -- MikroTik: the default-name of the wireless interface to configure.
  mikrotik_interface = "wlan1",
})

local function test_ssid(mac)
  local hex = mac:gsub("[^%x]", "")
  if #hex < 5 then return nil end
  return "test_" .. hex:sub(-5):upper()
end

local function values_for(root, ssid)
  if root == "Device" then
    return {
      ["Device.WiFi.SSID.1.SSID"] = ssid,
      ["Device.WiFi.SSID.1.Enable"] = true,
      ["Device.WiFi.AccessPoint.1.Enable"] = true,
    }
  elseif root == "InternetGatewayDevice" then
    return {
      ["InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"] = ssid,
      ["InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Enable"] = true,
    }
  end
end

local function failed(dev, what, fault)
  dev:tag("wifi_failed")
  fault = fault or {}
  dev:fault("wifi: " .. what .. " failed: " .. (fault.code and fault.code .. " " or "")
            .. tostring(fault.string))
end

local function on_inform(dev, inform)
  if not wifi.test_ssid and not dev:has_tag("wifi_test") then return end  -- off
  if dev:has_tag("wifi_failed") then return end

  local s = dev:summary()
  local ssid = s.mac and test_ssid(s.mac)
  if not ssid then return end  -- MAC not known yet (read on the next boot)

  if dev.is_mikrotik then
    if s.ssid == ssid then return end
    local iface = wifi.mikrotik_interface or "wlan1"
    if not iface:match("^[%w_-]+$") then error("settings.wifi.mikrotik_interface: bad name " .. iface) end
    -- ssid is "test_" and five hex digits: nothing to quote.
    local script = string.format(
      '/interface wireless set [ find default-name=%s ] mode=ap-bridge ssid="%s" disabled=no\n', iface, ssid)
    local key, fault = dev:alter(script, { command_key = "wifi-" .. ssid })
    if not key then return failed(dev, "script", fault) end
    dev:summary{ ssid = ssid }
    dev:log("wifi: test SSID", ssid, "pushed as", key)
    return
  end

  local values = values_for(dev.root, ssid)
  if not values then return end
  local sent, fault = dev:set(values, { force = inform:has_event("0 BOOTSTRAP") })
  if not sent then return failed(dev, "SetParameterValues", fault) end
  if s.ssid ~= ssid then dev:summary{ ssid = ssid } end
  if sent > 0 then dev:log("wifi: test SSID", ssid, "set") end
end

-- The result of the MikroTik script.
local function on_transfer_complete(dev, tc)
  local key = tc.command_key or ""
  if key:sub(1, 5) ~= "wifi-" then return end
  if tc.ok then
    dev:log("wifi:", key, "applied")
    return
  end
  dev:summary{ ssid = "" }  -- unknown again, so the script goes out once the tag is removed
  failed(dev, "script " .. key, { code = tc.fault_code, string = tc.fault_string })
end

luacs.job{ name = "wifi", on_inform = on_inform, on_transfer_complete = on_transfer_complete }
