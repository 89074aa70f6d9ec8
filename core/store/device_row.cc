#include "core/store/device_row.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/store/pg_text.h"

namespace luacs::store {

const char* const kLoadDevicesSql =
    "SELECT q.id, d.id IS NOT NULL, d.oui, d.product_class, d.serial_number, d.manufacturer,"
    " d.data_model_root, (extract(epoch FROM d.first_seen) * 1000)::int8,"
    " (extract(epoch FROM d.last_inform) * 1000)::int8,"
    " (extract(epoch FROM d.last_boot) * 1000)::int8,"
    " (extract(epoch FROM d.last_bootstrap) * 1000)::int8,"
    " d.remote_address, array_to_json(d.last_events), array_to_json(d.tags), d.parameters,"
    " (SELECT json_agg(json_build_array(t.id, t.name, t.args,"
    "   (extract(epoch FROM t.created) * 1000)::int8, (extract(epoch FROM t.expires) * 1000)::int8,"
    "   t.unique_key) ORDER BY t.id)"
    "  FROM tasks t WHERE t.device_id = q.id AND t.state = 'pending'"
    "  AND (t.expires IS NULL OR t.expires > now()))"
    " FROM unnest($1::text[]) AS q(id) LEFT JOIN devices d ON d.id = q.id";

namespace {

int64_t to_int(std::string_view s) {
  int64_t n = 0;
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

Task task_from_json(const std::string& device_id, const nlohmann::json& a) {
  Task t;
  t.device_id = device_id;
  t.id = a.at(0).get<int64_t>();
  t.name = a.at(1).get<std::string>();
  t.args = a.at(2).is_null() ? "{}" : a.at(2).dump();
  t.created = from_epoch_ms(a.at(3).is_null() ? 0 : a.at(3).get<int64_t>());
  if (!a.at(4).is_null()) t.expires = from_epoch_ms(a.at(4).get<int64_t>());
  if (!a.at(5).is_null()) t.unique_key = a.at(5).get<std::string>();
  return t;
}

// The parameters column, {"name": [value, type, read_at_seconds], ...}, read
// as a stream straight into the map: loading devices on a cache miss is the
// store thread's main work with a fleet larger than the cache, and a JSON
// tree per device was most of it. Returns false (the map then holds a part)
// on anything but that shape with string values; the caller reads those
// rows with a tree instead.
class ParametersSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit ParametersSax(std::map<std::string, StoredParameter>& out) : out_(out) {}

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t n) override { return number(static_cast<double>(n)); }
  bool number_unsigned(number_unsigned_t n) override { return number(static_cast<double>(n)); }
  bool number_float(number_float_t n, const string_t&) override { return number(n); }
  bool binary(binary_t&) override { return false; }
  bool string(string_t& v) override {
    if (depth_ != 2) return depth_ == 1 ? add_bare() : false;
    if (index_ == 0) {
      param_.value = std::move(v);
    } else if (index_ == 1) {
      param_.type = std::move(v);
    }  // a string read time: none
    ++index_;
    return true;
  }
  bool start_object(std::size_t) override { return depth_++ == 0; }
  bool key(string_t& k) override {
    name_ = std::move(k);
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ != 1) return false;
    ++depth_;
    index_ = 0;
    param_ = StoredParameter{};
    return true;
  }
  bool end_array() override {
    --depth_;
    if (index_ < 3) param_ = StoredParameter{};  // as the tree reading treats a short array
    out_.insert_or_assign(std::move(name_), std::move(param_));
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool number(double n) {
    if (depth_ != 2) return depth_ == 1 ? add_bare() : false;
    if (index_ == 0) return false;  // a number as the value: the tree path formats it
    if (index_ == 1) param_.type = "string";
    if (index_ == 2) param_.read_at = from_epoch_seconds(n);
    ++index_;
    return true;
  }
  bool scalar() {
    if (depth_ != 2) return depth_ == 1 ? add_bare() : false;
    if (index_ == 0) return false;
    if (index_ == 1) param_.type = "string";
    ++index_;
    return true;
  }
  bool add_bare() {  // "name": not-an-array
    out_.insert_or_assign(std::move(name_), StoredParameter{});
    return true;
  }

  std::map<std::string, StoredParameter>& out_;
  int depth_ = 0;
  int index_ = 0;
  std::string name_;
  StoredParameter param_;
};

void read_parameters(std::string_view text, std::map<std::string, StoredParameter>& out) {
  ParametersSax sax(out);
  if (nlohmann::json::sax_parse(text, &sax)) return;
  out.clear();
  const auto params = nlohmann::json::parse(text);
  for (const auto& [name, v] : params.items()) {
    StoredParameter p;
    if (v.is_array() && v.size() >= 3) {
      p.value = v[0].is_string() ? v[0].get<std::string>() : v[0].dump();
      p.type = v[1].is_string() ? v[1].get<std::string>() : "string";
      if (v[2].is_number()) p.read_at = from_epoch_seconds(v[2].get<double>());
    }
    out.emplace(name, std::move(p));
  }
}

}  // namespace

Task task_from_json_text(const std::string& device_id, const std::string& json) {
  return task_from_json(device_id, nlohmann::json::parse(json));
}

std::vector<LoadedDevice> parse_loaded_devices(const PgReply& reply) {
  std::vector<LoadedDevice> out;
  out.reserve(reply.rows());
  for (int i = 0; i < reply.rows(); ++i) {
    LoadedDevice l;
    l.id = std::string(reply.get(i, 0));
    l.exists = reply.get(i, 1) == "t";
    l.device = std::make_shared<Device>();
    Device& d = *l.device;
    d.id = l.id;
    try {
      if (l.exists) {
        d.oui = std::string(reply.get(i, 2));
        d.product_class = std::string(reply.get(i, 3));
        d.serial_number = std::string(reply.get(i, 4));
        d.manufacturer = std::string(reply.get(i, 5));
        d.data_model_root = std::string(reply.get(i, 6));
        d.first_seen = from_epoch_ms(to_int(reply.get(i, 7)));
        d.last_inform = from_epoch_ms(to_int(reply.get(i, 8)));
        if (!reply.is_null(i, 9)) d.last_boot = from_epoch_ms(to_int(reply.get(i, 9)));
        if (!reply.is_null(i, 10)) d.last_bootstrap = from_epoch_ms(to_int(reply.get(i, 10)));
        d.remote_address = std::string(reply.get(i, 11));
        for (const auto& e : nlohmann::json::parse(reply.get(i, 12))) d.last_events.push_back(e);
        for (const auto& t : nlohmann::json::parse(reply.get(i, 13)))
          d.tags.insert(t.get<std::string>());
        read_parameters(reply.get(i, 14), d.parameters);
      }
      if (!reply.is_null(i, 15)) {
        for (const auto& a : nlohmann::json::parse(reply.get(i, 15)))
          d.pending_tasks.push_back(task_from_json(d.id, a));
      }
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("device " + l.id + ": unreadable row: " + e.what());
    }
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace luacs::store
