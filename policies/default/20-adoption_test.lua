-- Tests of 20-adoption.lua: run with `luacs test policies/default`.

-- A MikroTik hAP lite on RouterOS 6, from the TR-181 corpus model.
local function mikrotik(version)
  return cpe{ model = "tr181", serial = "7DCF08DC745D", params = {
    ["DeviceID.Manufacturer"] = "MikroTik", ["DeviceID.OUI"] = "E48D8C",
    ["DeviceID.ProductClass"] = "hAP lite",
    ["Device.DeviceInfo.SoftwareVersion"] = version or "6.49.10",
    ["Device.DeviceInfo.X_MIKROTIK_ArchName"] = "mipsbe",
  } }
end

test("a new device is tagged pending and nothing is pushed", function()
  for _, d in ipairs{ cpe{ model = "tr098" }, cpe{ model = "tr181" }, mikrotik() } do
    local first = d:session{ events = { "1 BOOT" } }
    expect_eq(first.tags_added, { "pending" })
    expect_not_has(first.rpcs, "Download")
    expect_not_has(first.rpcs, "SetParameterValues")
    local second = d:session{}
    expect_eq(second.tags_added, {})
    expect_eq(second.rpcs, {})
  end
end)

test("the adopt task pushes a MikroTik script and tags it provisioned", function()
  local d = mikrotik()
  d:session{ events = { "1 BOOT" } }
  local s = d:session{ tasks = { { "adopt", '{"identity": "lab-1"}' } } }
  expect_eq(s.rpcs, { "Download" })
  local dl = s.requests[1]
  expect_eq(dl.file_type, "3 Vendor Configuration File")
  expect(dl.target_file_name:match("%.alter$"), "a .alter file")
  expect_eq(s.tags_added, { "provisioned" })
  expect_eq(s.tags_removed, { "pending" })
  expect(s.tasks[1].ok, s.tasks[1].result)
  expect_eq(d:summary("identity"), "lab-1")

  -- Its TransferComplete: success, and a periodic session costs nothing.
  local done = d:session{ events = { "7 TRANSFER COMPLETE", "M Download" },
                          transfers = { { command_key = dl.command_key } } }
  expect_eq(done.rpcs, {})
  expect_eq(done.faults, {})
  expect_eq(d:tags(), { "provisioned" })
  expect_eq(d:session{}.rpcs, {})
end)

test("the operator tag adopt provisions a TR-181 device with SetParameterValues", function()
  local d = cpe{ model = "tr181" }
  d:session{ events = { "1 BOOT" } }
  d:tag("adopt")
  local s = d:session{}
  expect_has(s.rpcs, "SetParameterValues")
  expect_has(d:tags(), "provisioned")
  expect_not_has(d:tags(), "pending")
end)
