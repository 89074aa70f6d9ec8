// The transfers of `dev` (docs/policy-api.md §4 and §10): Download and
// Upload as the policy words them, and the pushes of files luacs serves
// itself: a RouterOS script as a .alter file (dev:alter) and a MikroTik
// firmware upgrade manifest (dev:upgrade), both built and published by the
// server through FileServices. On the worker thread of the session.
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/util/log.h"
#include "lua/bind_dev.h"
#include "lua/binding.h"

namespace luacs::lua {
namespace {

constexpr size_t kMaxScriptBytes = 1 << 20;

// The fields Download and Upload share, from the options table at 2, which
// holds no key but `known`.
template <typename Transfer>
void transfer_fields(lua_State* L, const char* what, Transfer& t,
                     std::initializer_list<const char*> known) {
  luaL_checktype(L, 2, LUA_TTABLE);
  check_options(L, 2, std::string("dev:") + what, known);
  t.url = opt_field(L, 2, "url");
  t.file_type = opt_field(L, 2, "file_type");
  if (t.url.empty() || t.file_type.empty()) luaL_error(L, "dev:%s needs url and file_type", what);
  t.command_key = opt_field(L, 2, "command_key");
  t.username = opt_field(L, 2, "username");
  t.password = opt_field(L, 2, "password");
  t.delay_seconds = opt_uint(L, 2, "delay");
}

int dev_download(lua_State* L) {
  Run::Impl* r = self(L);
  soap::Download d;
  transfer_fields(L, "download", d,
                  {"url", "file_type", "command_key", "username", "password", "delay",
                   "target_file_name", "file_size"});
  d.target_file_name = opt_field(L, 2, "target_file_name");
  d.file_size = opt_uint(L, 2, "file_size");
  return send_single(L, r, std::move(d), "download");
}

int dev_upload(lua_State* L) {
  Run::Impl* r = self(L);
  soap::Upload u;
  transfer_fields(L, "upload", u,
                  {"url", "file_type", "command_key", "username", "password", "delay"});
  return send_single(L, r, std::move(u), "upload");
}

// Sends the Download of a file just published (`d` has every argument but
// the URL and the size).
int push_file(lua_State* L, Run::Impl* r, const ServedFile& f, soap::Download d) {
  d.file_size = static_cast<uint32_t>(f.size);
  d.url = r->files_base() + f.path;
  auto c = r->new_call(Call::Kind::kSingle);
  c->returns_key = true;
  c->command_key = d.command_key;
  r->single(c, std::move(d));
  return wait<"dev", k_single>(L, r);
}

// What a push needs before it publishes anything: a coroutine that may
// wait, the service, and a URL for the CPE to fetch from.
// An error of the set-up, not of the policy code: "" when none.
std::string need_files(lua_State* L, Run::Impl* r, bool service, const char* what) {
  need_yield(L, what);
  if (!service) return std::string("dev:") + what + ": no file server in this process";
  if (r->files_base().empty())
    return std::string("dev:") + what + ": no file server URL known ([files] url)";
  return {};
}

// The `nil, fault` of a push that failed on the ACS side (nothing sent):
// fault.code 0, fault.string the reason.
int not_sent(lua_State* L, const std::string& why) {
  lua_pushnil(L);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "code");
  lua_pushlstring(L, why.data(), why.size());
  lua_setfield(L, -2, "string");
  return 2;
}

int dev_alter(lua_State* L) {
  Run::Impl* r = self(L);
  size_t len = 0;
  const char* script = luaL_checklstring(L, 2, &len);
  if (len == 0) return luaL_error(L, "dev:alter: the script is empty");
  if (len > kMaxScriptBytes) return luaL_error(L, "dev:alter: the script is larger than 1 MiB");
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  check_options(L, 3, "dev:alter", {"name", "command_key", "delay"});
  std::optional<std::string> name = opt_string(L, 3, "name");
  std::optional<std::string> command_key = opt_string(L, 3, "command_key");
  soap::Download d;
  d.file_type = "3 Vendor Configuration File";
  d.delay_seconds = opt_uint(L, 3, "delay");
  if (auto why = need_files(L, r, r->files && r->files->publish_alter, "alter"); !why.empty())
    return not_sent(L, why);
  ServedFile f = r->files->publish_alter(r->device_id(), std::string(script, len), name);
  d.command_key = command_key.value_or("alter-" + f.sha256.substr(0, 8));
  d.target_file_name = f.name;
  return push_file(L, r, f, std::move(d));
}

int dev_upgrade(lua_State* L) {
  Run::Impl* r = self(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  check_options(L, 2, "dev:upgrade", {"links", "version", "command_key", "delay"});
  lua_getfield(L, 2, "links");
  if (!lua_istable(L, -1) || luaL_len(L, -1) == 0)
    return luaL_error(L, "dev:upgrade needs links = { url or file name, ... }");
  auto links = names_arg(L, lua_gettop(L), "upgrade");
  lua_pop(L, 1);
  std::string version = opt_field(L, 2, "version");
  std::vector<std::string> urls;
  bool client = false;
  for (const auto& l : links) {
    std::string url = l;
    if (l.rfind("http://", 0) != 0 && l.rfind("https://", 0) != 0) {
      std::string path = r->files && r->files->path_of ? r->files->path_of(l) : std::string();
      if (path.empty())
        return not_sent(L, "dev:upgrade: no file '" + l + "' on the file server ([files] dir)");
      url = r->files_base() + path;
    }
    if (l.find("tr069-client") != std::string::npos) client = true;
    urls.push_back(std::move(url));
  }
  if (!client)
    log::warn("policy device=" + r->device_id() +
              ": dev:upgrade without a tr069-client package among the links: the device will "
              "come back without CWMP");
  std::optional<std::string> command_key = opt_string(L, 2, "command_key");
  soap::Download d;
  d.file_type = "1 Firmware Upgrade Image";
  d.delay_seconds = opt_uint(L, 2, "delay");
  if (auto why = need_files(L, r, r->files && r->files->publish_manifest, "upgrade"); !why.empty())
    return not_sent(L, why);
  ServedFile f = r->files->publish_manifest(urls);
  d.command_key =
      command_key.value_or("upgrade-" + (version.empty() ? f.sha256.substr(0, 8) : version));
  return push_file(L, r, f, std::move(d));
}

int dev_file_url(lua_State* L) {
  Run::Impl* r = self(L);
  std::string name = luaL_checkstring(L, 2);
  std::string path = r->files && r->files->path_of ? r->files->path_of(name) : std::string();
  std::string base = r->files_base();
  if (path.empty() || base.empty()) {
    lua_pushnil(L);
    return 1;
  }
  std::string url = base + path;
  lua_pushlstring(L, url.data(), url.size());
  return 1;
}

}  // namespace

const luaL_Reg kDevFileMethods[] = {
    {"download", safe<"dev:download", dev_download>}, {"upload", safe<"dev:upload", dev_upload>},
    {"alter", safe<"dev:alter", dev_alter>},          {"upgrade", safe<"dev:upgrade", dev_upgrade>},
    {"file_url", safe<"dev:file_url", dev_file_url>}, {nullptr, nullptr},
};

}  // namespace luacs::lua
