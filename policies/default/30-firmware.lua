-- (b) Firmware rollout for MikroTik RouterOS.
--
-- Off until settings.firmware.target is set. Then a MikroTik device whose
-- Device.DeviceInfo.SoftwareVersion (sent in every Inform) is lower than the
-- target, and that carries settings.firmware.only_tag ("upgrade" by default;
-- nil = every device), gets an upgrade manifest (dev:upgrade): the routeros
-- package and the matching tr069-client package for its CPU architecture
-- (Device.DeviceInfo.X_MIKROTIK_ArchName). The device downloads them,
-- installs, reboots, and reports a TransferComplete with the command key
-- "upgrade-<version>" in its first session after the reboot.
--
-- Tags:
--   upgrading       the manifest was sent; no new upgrade while it is set
--   upgraded        the TransferComplete reported success (or the Inform
--                   shows the target version, when the TransferComplete got lost)
--   upgrade_failed  the device reported a failure, or stayed upgrading longer
--                   than settings.firmware.give_up_after, or cannot be
--                   upgraded (no architecture). Not retried: untag it to retry.
--
-- Never a downgrade: a device at or above the target is left alone.
-- Summary fields: firmware_target (version sent), firmware_sent_at (epoch).
--
-- The task tasks.upgrade(dev, { version = "7.15.3" }) ("Upgrade now")
-- upgrades one device at once, whatever its tags (version defaults to the
-- target).

local ARCH = "Device.DeviceInfo.X_MIKROTIK_ArchName"
local VERSION = "Device.DeviceInfo.SoftwareVersion"
local NONE = {}

-- Settings: settings.firmware, defaults below; override single keys in a
-- later file (settings.firmware.target = "7.15.3"). false switches off a
-- knob that has a default (give_up_after = false: wait forever). Stands
-- alone: copy this file into any policy folder.
local fw = luacs.settings("firmware", {
  -- RouterOS version to bring devices up to, e.g. "7.15.3". Unset: off.
  -- Devices already at or above it are left alone (never a downgrade).
  -- target = "7.15.3",
  -- Where the CPE downloads the .npk files from: "<base_url>/<file>".
  -- Unset: the files are served by luacs itself from [files] dir.
  -- base_url = "https://fw.example.net/routeros",
  -- Only devices with this tag are upgraded (roll out to a lab device, then
  -- small groups, by tagging them). false: every MikroTik device.
  only_tag = "upgrade",
  -- function(version, arch) -> list of .npk file names, to replace the
  -- built-in naming (package_files below), e.g. for x86/CHR or extra
  -- packages such as wireless. Unset: the built-in naming.
  -- file_names = function(version, arch) return { ... } end,
  -- Seconds a device may stay upgrading without reaching the target before
  -- it is tagged upgrade_failed. false: wait forever.
  give_up_after = 24 * 3600,
})

-- The package files of one RouterOS version for one architecture. MikroTik
-- names them differently in v6 and v7 (docs/cwmp-protocol.md §11), and
-- always wants the tr069-client of the same version, or the device comes
-- back without CWMP:
--   v7: routeros-7.15.3-arm.npk        tr069-client-7.15.3-arm.npk
--   v6: routeros-mipsbe-6.49.10.npk    tr069-client-6.49.10-mipsbe.npk
-- x86/CHR and extra packages (wireless, ...) differ: name them yourself with
-- settings.firmware.file_names = function(version, arch) return {...} end.
local function package_files(version, arch)
  local custom = fw.file_names
  if custom then return custom(version, arch) end
  local major = tonumber(version:match("^%d+") or "")
  if not major then error("firmware: not a RouterOS version: " .. tostring(version)) end
  if major >= 7 then
    return {
      string.format("routeros-%s-%s.npk", version, arch),
      string.format("tr069-client-%s-%s.npk", version, arch),
    }
  end
  return {
    string.format("routeros-%s-%s.npk", arch, version),
    string.format("tr069-client-%s-%s.npk", version, arch),
  }
end

-- File names served by luacs ([files] dir), or URLs under base_url.
local function links_for(files)
  local base = fw.base_url
  if base == nil or base == "" then return files end
  base = base:gsub("/+$", "")
  local links = {}
  for i, name in ipairs(files) do links[i] = base .. "/" .. name end
  return links
end

local function give_up(dev, message)
  dev:untag("upgrading")
  dev:tag("upgrade_failed")
  dev:fault(message)
end

-- Sends the upgrade manifest for `target`. Returns the command key, or nil
-- and a message (the device is then tagged upgrade_failed).
local function upgrade(dev, target)
  local arch = dev:param(ARCH)
  if not arch then
    local got = dev:get(ARCH)
    arch = got and got[ARCH]
  end
  if not arch or not arch:match("^[%w_-]+$") then
    local message = "firmware: no usable " .. ARCH .. " (" .. tostring(arch) .. "), cannot pick packages"
    give_up(dev, message)
    return nil, message
  end

  dev:tag("upgrading")
  dev:untag("upgraded")
  dev:summary{ firmware_target = target, firmware_sent_at = os.time() }
  -- nil, fault: the CPE refused, or a link cannot be served (no such file
  -- in [files] dir); either way upgrading must not stick.
  local key, fault = dev:upgrade{ links = links_for(package_files(target, arch)), version = target }
  if not key then
    local why = tostring(fault.code) .. " " .. tostring(fault.string)
    local message = "firmware: upgrade to " .. target .. " not sent: " .. why
    give_up(dev, message)
    return nil, message
  end
  dev:log("firmware: upgrading", dev:param(VERSION), "->", target, "for", arch, "as", key)
  return key
end

-- A device tagged upgrading: done when it runs the version it was sent (the
-- TransferComplete may have been lost), failed when that takes too long.
local function settle(dev, version)
  local s = dev:summary()
  local target = s.firmware_target or fw.target
  if target and luacs.version_compare(version, target) >= 0 then
    dev:untag("upgrading")
    dev:tag("upgraded")
    dev:log("firmware: running", version, "(no TransferComplete seen)")
    return
  end
  local limit, sent_at = fw.give_up_after, tonumber(s.firmware_sent_at)
  if limit and sent_at and os.time() - sent_at > limit then
    give_up(dev, string.format("firmware: still %s, %ds after the upgrade to %s was sent",
                               version, os.time() - sent_at, tostring(target)))
  end
end

local function on_inform(dev)
  local upgrading = dev:has_tag("upgrading")
  if not fw.target and not upgrading then return end  -- the common case: off
  if not dev.is_mikrotik then return end
  local version = dev:param(VERSION)
  if not version then return end

  if upgrading then return settle(dev, version) end
  if luacs.version_compare(version, fw.target) >= 0 then return end  -- never downgrade
  if fw.only_tag and not dev:has_tag(fw.only_tag) then return end
  if dev:has_tag("upgrade_failed") then return end
  upgrade(dev, fw.target)
end

local function on_transfer_complete(dev, tc)
  local key = tc.command_key or ""
  if key:sub(1, 8) ~= "upgrade-" then return end
  dev:untag("upgrading")
  if not tc.ok then
    dev:tag("upgrade_failed")
    dev:fault(string.format("firmware: %s failed: %s %s", key,
                            tostring(tc.fault_code), tostring(tc.fault_string or "")))
    return
  end
  -- Trust, but check: the Inform of this session shows what it runs now.
  local version, target = dev:param(VERSION), dev:summary().firmware_target
  if version and target and luacs.version_compare(version, target) < 0 then
    dev:tag("upgrade_failed")
    dev:fault("firmware: " .. key .. " reported success, but the device runs " .. version)
    return
  end
  dev:untag("upgrade_failed")
  dev:tag("upgraded")
  dev:log("firmware:", key, "done, running", version)
end

luacs.job{ name = "firmware", on_inform = on_inform, on_transfer_complete = on_transfer_complete }

-- "Upgrade now" for one device: args { version = "7.15.3" } (default: the
-- target). Ignores only_tag and upgrade_failed; refuses a downgrade, a
-- non-MikroTik device and a device already upgrading.
tasks = tasks or {}
function tasks.upgrade(dev, args)
  local target = (args or NONE).version or fw.target
  if type(target) ~= "string" or not target:match("^%d+[%w.]*$") then
    error("tasks.upgrade: version must be a RouterOS version such as \"7.15.3\"")
  end
  if not dev.is_mikrotik then error("tasks.upgrade: not a MikroTik device") end
  if dev:has_tag("upgrading") then error("tasks.upgrade: an upgrade is already under way") end
  local version = dev:param(VERSION)
  if version and luacs.version_compare(version, target) >= 0 then
    error("tasks.upgrade: the device runs " .. version .. ", not older than " .. target)
  end
  dev:untag("upgrade_failed")
  local key, message = upgrade(dev, target)
  if not key then error(message) end
  return { version = target, command_key = key }
end
