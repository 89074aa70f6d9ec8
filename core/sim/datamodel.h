// A simulated device's data model, read from a genieacs-sim style CSV.
//
// Two layouts exist in ../shared/corpus/datamodels (the header row names the
// columns): "Parameter,Object,Writable,Value,Value type" and the longer one
// with timestamps, notification and access list. Only Parameter, Object,
// Writable, Value and Value type are used. DeviceID.* rows give the DeviceId
// of the Inform; every other row is a parameter (Object=true rows are the
// objects, named without the trailing dot).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/soap/message.h"

namespace luacs::sim {

struct Parameter {
  std::string name;  // without a trailing dot, also for objects
  std::string value;
  std::string type;  // xsd local name ("string", "unsignedInt", ...)
  bool object = false;
  bool writable = false;
};

// RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines.
std::vector<std::vector<std::string>> parse_csv(std::string_view text);

class DataModel {
 public:
  // Throws std::runtime_error on a missing file or a header without the
  // needed columns.
  static DataModel load(const std::string& path);
  static DataModel from_csv(std::string_view text, const std::string& name);

  const std::string& name() const { return name_; }  // file name without .csv
  const std::string& root() const { return root_; }  // "InternetGatewayDevice" | "Device"
  const soap::DeviceIdStruct& device_id() const { return device_id_; }

  // Exact name (object names may be given with or without the trailing dot).
  const Parameter* find(std::string_view name) const;
  // Every row whose name starts with prefix, in name order. A prefix "" is
  // the whole tree.
  std::span<const Parameter> under(std::string_view prefix) const;
  const std::vector<Parameter>& all() const { return params_; }

  // Gives a parameter another value (and, unless `type` is empty, type),
  // adding it when the CSV has none; DeviceID.* names change the DeviceId.
  // A test's own device: "the same router, on an older firmware".
  void set(const std::string& name, const std::string& value, const std::string& type = "");

  // The parameters a CPE of this root always puts in its Inform, in order,
  // with the CSV's values and types; those missing from the CSV are skipped.
  const std::vector<soap::ParameterValue>& inform_parameters() const { return inform_; }

 private:
  std::string name_;
  std::string root_;
  soap::DeviceIdStruct device_id_;
  std::vector<Parameter> params_;  // sorted by name
  std::vector<soap::ParameterValue> inform_;
};

}  // namespace luacs::sim
