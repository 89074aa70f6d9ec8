// A policy folder: reading its files, `luacs check`, and the PolicyManager
// that publishes a checked folder as the generation every worker serves.
// check() runs on any thread; the PolicyManager is shared by every thread
// (a mutex guards its state, reloads are serialised).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "lua/policy.h"
#include "lua/state.h"

namespace luacs::lua {
namespace {

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxTotalBytes = 8 << 20;
constexpr size_t kMaxFiles = 256;

// Reads every *.lua file directly in dir, in byte order of the names, but
// the policy's tests (*_test.lua, run by `luacs test`, never by the server).
// Throws std::runtime_error("dir: ...") when the folder cannot be read or a
// file is too large.
std::vector<SourceFile> read_policy_dir(const std::string& dir) {
  struct CloseDir {
    void operator()(DIR* p) const { closedir(p); }
  };
  std::unique_ptr<DIR, CloseDir> d(opendir(dir.c_str()));
  if (!d)
    throw std::runtime_error(dir + ": cannot read the policy folder: " + std::strerror(errno));
  std::vector<std::string> names;
  while (dirent* e = readdir(d.get())) {
    std::string n = e->d_name;
    if (n.empty() || n[0] == '.' || n.size() < 5 || n.compare(n.size() - 4, 4, ".lua") != 0)
      continue;
    if (n.size() > 9 && n.compare(n.size() - 9, 9, "_test.lua") == 0) continue;
    names.push_back(std::move(n));
  }
  d.reset();
  std::sort(names.begin(), names.end());
  if (names.size() > kMaxFiles)
    throw std::runtime_error(dir + ": more than " + std::to_string(kMaxFiles) + " policy files");
  std::vector<SourceFile> files;
  size_t total = 0;
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  for (const auto& n : names) {
    std::string path = base + "/" + n;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (static_cast<size_t>(st.st_size) > kMaxFileBytes)
      throw std::runtime_error(path + ": larger than " + std::to_string(kMaxFileBytes >> 20) +
                               " MiB");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot read: " + std::strerror(errno));
    std::string text;
    text.resize(static_cast<size_t>(st.st_size));
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    total += text.size();
    if (total > kMaxTotalBytes)
      throw std::runtime_error(dir + ": policy files larger than " +
                               std::to_string(kMaxTotalBytes >> 20) + " MiB in all");
    files.push_back({path, std::move(text)});
  }
  if (files.empty()) throw std::runtime_error(dir + ": no *.lua file in the policy folder");
  return files;
}

}  // namespace

CheckResult check(const std::string& dir, const Limits& limits) {
  CheckResult r;
  auto p = std::make_shared<Policy>();
  p->dir = dir;
  try {
    p->files = read_policy_dir(dir);
  } catch (const std::exception& e) {
    r.error = e.what();
    return r;
  }
  std::string error;
  auto st = State::load(p->files, 0, limits, &error, &p->warnings, &p->hooks, &p->tasks, &p->jobs);
  r.warnings = p->warnings;
  if (!st) {
    r.error = error;
    return r;
  }
  r.ok = true;
  p->loaded_at = std::chrono::system_clock::now();
  r.policy = std::move(p);
  return r;
}

PolicyManager::PolicyManager(std::string dir, Limits limits)
    : dir_(std::move(dir)), limits_(limits) {}

CheckResult PolicyManager::reload() {
  std::lock_guard reload_lock(reload_mu_);
  if (dir_.empty()) {
    CheckResult r;
    r.error = "no policy folder configured ([policy] dir)";
    return r;
  }
  CheckResult r = check(dir_, limits_);
  std::lock_guard lock(mu_);
  ++reloads_;
  if (!r.ok) {
    ++reload_failures_;
    last_error_ = r.error;
    last_error_at_ = std::chrono::system_clock::now();
    return r;
  }
  auto p = std::make_shared<Policy>(*r.policy);
  p->generation = ++last_generation_;
  current_ = p;
  r.policy = p;
  last_error_.clear();
  generation_.store(p->generation, std::memory_order_release);
  return r;
}

std::shared_ptr<const Policy> PolicyManager::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

PolicyManager::Status PolicyManager::status() const {
  std::lock_guard lock(mu_);
  Status s;
  s.dir = dir_;
  if (current_) {
    s.generation = current_->generation;
    s.loaded_at = current_->loaded_at;
    s.hooks = current_->hooks;
    s.tasks = current_->tasks;
    s.warnings = current_->warnings;
  }
  s.last_error = last_error_;
  s.last_error_at = last_error_at_;
  s.reloads = reloads_;
  s.reload_failures = reload_failures_;
  return s;
}

}  // namespace luacs::lua
