-- Tests of 10-normalise.lua: run with `luacs test policies/default`.

test("a TR-098 boot fills the summary with one read, a periodic costs nothing", function()
  local d = cpe{ model = "tr098" }
  local boot = d:session{ events = { "1 BOOT" } }
  expect_eq(boot.status, 204)
  expect_eq(boot.rpcs, { "GetParameterValues" })
  expect_has(boot.requests[1].names, "InternetGatewayDevice.DeviceInfo.ModelName")
  expect_eq(boot.summary.serial, "8KA8WA1151100043")
  expect_eq(boot.summary.model, "BM632w")
  expect_eq(boot.summary.mac, "20:2B:C1:E0:06:65")
  expect_eq(boot.summary.wan_ip, "172.3.89.139")
  expect_eq(boot.summary.ssid, "404 WiMAX Not Found")

  local periodic = d:session{ events = { "2 PERIODIC" } }
  expect_eq(periodic.rpcs, {})
  expect_eq(d:summary("mac"), "20:2B:C1:E0:06:65")
end)

test("a factory reset reads model, mac and ssid again", function()
  local d = cpe{ model = "tr181" }
  d:session{ events = { "1 BOOT" } }
  expect_eq(d:session{ events = { "2 PERIODIC" } }.rpcs, {})
  local reset = d:session{ events = { "0 BOOTSTRAP", "1 BOOT" } }
  expect_eq(reset.rpcs, { "GetParameterValues" })
end)
