-- Tests of 40-wifi.lua: run with `luacs test policies/default`.

test("a device tagged wifi_test gets the test SSID once", function()
  local d = cpe{ model = "tr181" }
  d:session{ events = { "1 BOOT" } }
  d:tag("wifi_test")
  local s = d:session{}
  expect_eq(s.rpcs, { "SetParameterValues" })
  local values = s.requests[1].values
  expect_eq(values["Device.WiFi.SSID.1.SSID"], "test_00CE8")
  expect_eq(values["Device.WiFi.SSID.1.Enable"], "true")
  expect_eq(s.summary.ssid, "test_00CE8")
  expect_eq(d:session{}.rpcs, {})
  expect_eq(d:session{ events = { "1 BOOT" } }.rpcs, {})
end)

test("a refused set is tagged wifi_failed and not retried", function()
  local d = cpe{ model = "tr181" }
  d:session{ events = { "1 BOOT" } }
  d:tag("wifi_test")
  local s = d:session{ faults = { [1] = 9007 } }
  expect_eq(s.rpcs, { "SetParameterValues" })
  expect_has(d:tags(), "wifi_failed")
  expect_eq(d:session{}.rpcs, {})
end)
