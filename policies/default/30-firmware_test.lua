-- Tests of 30-firmware.lua: run with `luacs test policies/default`.

local function mikrotik(version)
  return cpe{ model = "tr181", serial = "7DCF08DC745D", params = {
    ["DeviceID.Manufacturer"] = "MikroTik", ["DeviceID.OUI"] = "E48D8C",
    ["DeviceID.ProductClass"] = "hAP lite",
    ["Device.DeviceInfo.SoftwareVersion"] = version,
    ["Device.DeviceInfo.X_MIKROTIK_ArchName"] = "mipsbe",
  } }
end

test("without a target version nothing is upgraded", function()
  local d = mikrotik("6.49.10")
  d:session{ events = { "1 BOOT" } }
  d:tag("upgrade")
  expect_not_has(d:session{}.rpcs, "Download")
end)

test("the upgrade task sends the manifest once, then waits", function()
  files{ "routeros-7.15.3-mipsbe.npk", "tr069-client-7.15.3-mipsbe.npk" }
  local d = mikrotik("6.49.10")
  d:session{ events = { "1 BOOT" } }
  local s = d:session{ tasks = { { "upgrade", '{"version": "7.15.3"}' } } }
  expect_has(s.rpcs, "Download")
  local dl = s.requests[#s.requests]
  expect_eq(dl.command_key, "upgrade-7.15.3")
  expect_eq(dl.file_type, "1 Firmware Upgrade Image")
  expect_has(d:tags(), "upgrading")

  local again = d:session{ tasks = { { "upgrade", '{"version": "7.15.3"}' } } }
  expect_not_has(again.rpcs, "Download")
  expect(not again.tasks[1].ok)
  expect_has(again.tasks[1].result, "already under way")

  -- Back on 7.15.3 after the reboot, with the TransferComplete.
  d:set("Device.DeviceInfo.SoftwareVersion", "7.15.3")
  local done = d:session{ events = { "1 BOOT", "7 TRANSFER COMPLETE", "M Download" },
                          transfers = { { command_key = "upgrade-7.15.3" } } }
  expect_eq(done.faults, {})
  expect_has(d:tags(), "upgraded")
  expect_not_has(d:tags(), "upgrading")
end)

test("the upgrade task refuses a downgrade", function()
  files{ "routeros-7.15.3-mipsbe.npk", "tr069-client-7.15.3-mipsbe.npk" }
  local d = mikrotik("7.16")
  d:session{ events = { "1 BOOT" } }
  local s = d:session{ tasks = { { "upgrade", '{"version": "7.15.3"}' } } }
  expect_not_has(s.rpcs, "Download")
  expect(not s.tasks[1].ok)
  expect_has(s.tasks[1].result, "not older than 7.15.3")
end)
