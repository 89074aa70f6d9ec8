#include "core/sim/datamodel.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace luacs::sim {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

bool truthy(std::string_view v) {
  return v == "true" || v == "1" || v == "TRUE" || v == "True";
}

}  // namespace

std::vector<std::vector<std::string>> parse_csv(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  auto end_field = [&] {
    row.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_row = [&] {
    end_field();
    if (!(row.size() == 1 && row[0].empty())) rows.push_back(std::move(row));
    row.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n') {
      end_row();
    } else if (c == '\r') {
      // CRLF line ends: the LF ends the row.
    } else {
      field += c;
      field_started = true;
    }
  }
  if (field_started || !field.empty() || !row.empty()) end_row();
  return rows;
}

DataModel DataModel::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (ends_with(name, ".csv")) name.resize(name.size() - 4);
  return from_csv(ss.str(), name);
}

DataModel DataModel::from_csv(std::string_view text, const std::string& name) {
  auto rows = parse_csv(text);
  if (rows.empty()) throw std::runtime_error(name + ": empty data model");
  const auto& head = rows[0];
  auto column = [&](std::string_view col) -> size_t {
    for (size_t i = 0; i < head.size(); ++i)
      if (head[i] == col) return i;
    throw std::runtime_error(name + ": no column '" + std::string(col) + "' in the header row");
  };
  size_t c_name = column("Parameter"), c_object = column("Object"), c_writable = column("Writable"),
         c_value = column("Value"), c_type = column("Value type");

  DataModel m;
  m.name_ = name;
  for (size_t r = 1; r < rows.size(); ++r) {
    auto& row = rows[r];
    auto cell = [&](size_t c) -> std::string_view {
      return c < row.size() ? std::string_view(row[c]) : std::string_view();
    };
    Parameter p;
    p.name = std::string(cell(c_name));
    if (p.name.empty()) continue;
    if (p.name.back() == '.') p.name.pop_back();
    p.object = truthy(cell(c_object));
    p.writable = truthy(cell(c_writable));
    p.value = std::string(cell(c_value));
    std::string_view type = cell(c_type);
    if (starts_with(type, "xsd:")) type.remove_prefix(4);
    p.type = type.empty() ? "string" : std::string(type);
    if (starts_with(p.name, "DeviceID.")) {
      std::string_view field = std::string_view(p.name).substr(9);
      if (field == "Manufacturer")
        m.device_id_.manufacturer = p.value;
      else if (field == "OUI")
        m.device_id_.oui = p.value;
      else if (field == "ProductClass")
        m.device_id_.product_class = p.value;
      else if (field == "SerialNumber")
        m.device_id_.serial_number = p.value;
      continue;
    }
    m.params_.push_back(std::move(p));
  }
  std::sort(m.params_.begin(), m.params_.end(),
            [](const Parameter& a, const Parameter& b) { return a.name < b.name; });
  m.params_.erase(
      std::unique(m.params_.begin(), m.params_.end(),
                  [](const Parameter& a, const Parameter& b) { return a.name == b.name; }),
      m.params_.end());

  m.root_ = m.under("InternetGatewayDevice.").empty() ? "Device" : "InternetGatewayDevice";
  const std::string& root = m.root_;

  // Without DeviceID.* rows, fall back to DeviceInfo.
  auto value_of = [&](const std::string& n) -> std::string {
    const Parameter* p = m.find(n);
    return p ? p->value : std::string();
  };
  auto& id = m.device_id_;
  if (id.manufacturer.empty()) id.manufacturer = value_of(root + ".DeviceInfo.Manufacturer");
  if (id.oui.empty()) id.oui = value_of(root + ".DeviceInfo.ManufacturerOUI");
  if (id.product_class.empty()) id.product_class = value_of(root + ".DeviceInfo.ProductClass");
  if (id.serial_number.empty()) id.serial_number = value_of(root + ".DeviceInfo.SerialNumber");
  if (id.serial_number.empty()) id.serial_number = "LOADGEN";

  // The forced Inform parameters (what genieacs-sim and real CPEs send).
  std::vector<std::string> names;
  if (root == "InternetGatewayDevice") {
    names = {root + ".DeviceSummary",
             root + ".DeviceInfo.SpecVersion",
             root + ".DeviceInfo.HardwareVersion",
             root + ".DeviceInfo.SoftwareVersion",
             root + ".DeviceInfo.ProvisioningCode",
             root + ".ManagementServer.ConnectionRequestURL",
             root + ".ManagementServer.ParameterKey"};
    // The WAN address: the first IP or PPP connection that has one.
    const Parameter* wan = nullptr;
    for (const auto& p : m.under(root + ".WANDevice.")) {
      if (p.object || !ends_with(p.name, ".ExternalIPAddress")) continue;
      if (p.name.find(".WANIPConnection.") == std::string::npos &&
          p.name.find(".WANPPPConnection.") == std::string::npos)
        continue;
      if (!wan || (wan->value.empty() && !p.value.empty())) wan = &p;
    }
    if (wan) names.push_back(wan->name);
  } else {
    names = {root + ".RootDataModelVersion",
             root + ".DeviceInfo.HardwareVersion",
             root + ".DeviceInfo.SoftwareVersion",
             root + ".DeviceInfo.ProvisioningCode",
             root + ".ManagementServer.ConnectionRequestURL",
             root + ".ManagementServer.ParameterKey"};
  }
  for (const auto& n : names) {
    const Parameter* p = m.find(n);
    if (p && !p->object) m.inform_.push_back({p->name, p->value, p->type});
  }
  return m;
}

const Parameter* DataModel::find(std::string_view name) const {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  auto it = std::lower_bound(params_.begin(), params_.end(), name,
                             [](const Parameter& p, std::string_view n) { return p.name < n; });
  if (it == params_.end() || it->name != name) return nullptr;
  return &*it;
}

std::span<const Parameter> DataModel::under(std::string_view prefix) const {
  auto lo = std::lower_bound(params_.begin(), params_.end(), prefix,
                             [](const Parameter& p, std::string_view n) { return p.name < n; });
  auto hi = std::partition_point(lo, params_.end(),
                                 [&](const Parameter& p) { return starts_with(p.name, prefix); });
  return {lo, hi};
}

void DataModel::set(const std::string& name, const std::string& value, const std::string& type) {
  if (starts_with(name, "DeviceID.")) {
    std::string_view field = std::string_view(name).substr(9);
    if (field == "Manufacturer") device_id_.manufacturer = value;
    if (field == "OUI") device_id_.oui = value;
    if (field == "ProductClass") device_id_.product_class = value;
    if (field == "SerialNumber") device_id_.serial_number = value;
    return;
  }
  auto it = std::lower_bound(params_.begin(), params_.end(), name,
                             [](const Parameter& p, std::string_view n) { return p.name < n; });
  if (it == params_.end() || it->name != name) {
    Parameter p;
    p.name = name;
    p.type = type.empty() ? "string" : type;
    it = params_.insert(it, std::move(p));
  }
  it->value = value;
  if (!type.empty()) it->type = type;
  for (auto& pv : inform_) {
    if (pv.name != name) continue;
    pv.value = value;
    pv.type = it->type;
  }
}

}  // namespace luacs::sim
