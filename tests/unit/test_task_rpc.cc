// Tasks (JSON from the store or the API) to ACS requests, and answers to JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/session/task_rpc.h"

using namespace luacs;
using session::outcome_json;
using session::task_rpc;

TEST(TaskRpc, BuildsEachRpc) {
  std::string err;
  auto gpv = task_rpc("GetParameterValues", R"({"names": ["Device.DeviceInfo."]})", &err);
  ASSERT_TRUE(gpv) << err;
  EXPECT_EQ(std::get<soap::GetParameterValues>(*gpv).names,
            std::vector<std::string>{"Device.DeviceInfo."});

  auto spv = task_rpc("SetParameterValues",
                      R"({"values": {"Device.WiFi.SSID.1.SSID": "test_12345",
                                     "Device.WiFi.Radio.1.Enable": true,
                                     "Device.ManagementServer.PeriodicInformInterval": 300},
                          "parameter_key": "k1"})",
                      &err);
  ASSERT_TRUE(spv) << err;
  const auto& s = std::get<soap::SetParameterValues>(*spv);
  EXPECT_EQ(s.parameter_key, "k1");
  ASSERT_EQ(s.parameters.size(), 3u);
  for (const auto& p : s.parameters) {
    if (p.name == "Device.WiFi.Radio.1.Enable") {
      EXPECT_EQ(p.type, "boolean");
      EXPECT_EQ(p.value, "true");
    }
    if (p.name == "Device.ManagementServer.PeriodicInformInterval") {
      EXPECT_EQ(p.type, "unsignedInt");
    }
  }
  auto typed =
      task_rpc("SetParameterValues", R"({"values": [["Device.X", "5", "xsd:int"]]})", &err);
  ASSERT_TRUE(typed) << err;
  EXPECT_EQ(std::get<soap::SetParameterValues>(*typed).parameters[0].type, "int");

  auto add = task_rpc("AddObject", R"({"object": "Device.NAT.PortMapping."})", &err);
  EXPECT_EQ(std::get<soap::AddObject>(*add).object_name, "Device.NAT.PortMapping.");
  auto dl = task_rpc("Download",
                     R"({"url": "http://files/fw.xml", "command_key": "fw-7.16",
                         "file_size": 1234})",
                     &err);
  ASSERT_TRUE(dl) << err;
  EXPECT_EQ(std::get<soap::Download>(*dl).file_type, "1 Firmware Upgrade Image");
  EXPECT_EQ(std::get<soap::Download>(*dl).file_size, 1234u);
  EXPECT_TRUE(task_rpc("Reboot", "", &err));
  EXPECT_TRUE(task_rpc("FactoryReset", "{}", &err));
  auto gpn = task_rpc("GetParameterNames", R"({"path": "Device.", "next_level": true})", &err);
  EXPECT_TRUE(std::get<soap::GetParameterNames>(*gpn).next_level);
}

TEST(TaskRpc, RejectsWhatDoesNotFit) {
  std::string err;
  EXPECT_FALSE(task_rpc("Frobnicate", "{}", &err));
  EXPECT_NE(err.find("unknown task"), std::string::npos);
  EXPECT_FALSE(task_rpc("GetParameterValues", "[1,2]", &err));
  EXPECT_FALSE(task_rpc("GetParameterValues", "{not json", &err));
  EXPECT_FALSE(task_rpc("AddObject", "{}", &err));
  EXPECT_FALSE(task_rpc("SetParameterValues", R"({"values": {}})", &err));
  EXPECT_FALSE(task_rpc("ScheduleInform", R"({"delay": 0})", &err));
}

TEST(TaskRpc, OutcomesAsJson) {
  cwmp::RpcOutcome ok;
  ok.kind = cwmp::RpcOutcome::Kind::kResponse;
  ok.response =
      soap::GetParameterValuesResponse{{{"Device.DeviceInfo.UpTime", "42", "unsignedInt"}}};
  auto j = nlohmann::json::parse(outcome_json(ok));
  EXPECT_EQ(j["Device.DeviceInfo.UpTime"][0], "42");
  EXPECT_EQ(j["Device.DeviceInfo.UpTime"][1], "unsignedInt");

  cwmp::RpcOutcome fault;
  fault.kind = cwmp::RpcOutcome::Kind::kCpeFault;
  fault.fault.code = 9003;
  fault.fault.set_parameter_values_faults = {{"Device.X", 9007, "bad"}};
  j = nlohmann::json::parse(outcome_json(fault));
  EXPECT_EQ(j["fault"]["code"], 9003);
  EXPECT_EQ(j["fault"]["parameters"][0]["code"], 9007);

  cwmp::RpcOutcome add;
  add.kind = cwmp::RpcOutcome::Kind::kResponse;
  add.response = soap::AddObjectResponse{4, 0};
  EXPECT_EQ(nlohmann::json::parse(outcome_json(add))["instance"], 4);

  cwmp::RpcOutcome err = cwmp::RpcOutcome::failed(cwmp::RpcOutcome::Error::kTimeout);
  EXPECT_EQ(nlohmann::json::parse(outcome_json(err))["error"], "timeout");
}
