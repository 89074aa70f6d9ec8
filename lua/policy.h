// The policy engine: Lua 5.4 policies that decide what every device is told.
//
// This is the public face of lua/ (DESIGN.md §4, STYLE.md "Lua embedding"):
//
// - PolicyManager (one per process) reads a policy folder, compiles and
//   smoke-loads it in a fresh Lua state, and publishes it as a new
//   generation. A reload that fails leaves the old generation serving and
//   reports the error as "file:line: message".
// - Engine (one per worker thread) keeps a Lua state per generation it still
//   uses. A new session gets the newest generation; a session in flight
//   keeps the one it started with.
// - Run (one per session) runs the hooks and policy tasks of one session as
//   coroutines: an RPC a hook asks for is queued on the cwmp::Session and the
//   coroutine resumes when the CPE has answered.
//
// lua/ knows the value types of core (messages, core/device's device and
// session result) and the pure session engine; never the network, the file
// server or the store (scripts/check-layering). The server hands it what it
// needs through FileServices.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cwmp/session.h"
#include "core/device/device.h"

namespace luacs::lua {

struct Limits {
  uint64_t max_instructions = 10'000'000;     // per hook call
  std::chrono::milliseconds time_limit{100};  // per hook call, time spent running Lua
  size_t memory_limit = 64 << 20;             // per Lua state
  unsigned batch_size = 32;                   // names per Get/Set/GetAttributes RPC
};

// One policy file as read from the folder: `name` is the path given to Lua
// as the chunk name ("policies/default/10-normalise.lua"), so every error
// names the real file.
struct SourceFile {
  std::string name;
  std::string text;
};

// A policy that compiled and smoke-loaded: immutable, shared by all workers.
struct Policy {
  uint64_t generation = 0;
  std::string dir;
  std::vector<SourceFile> files;
  std::vector<std::string> hooks;     // the hooks it defines, e.g. "on_inform"
  std::vector<std::string> tasks;     // the names in its `tasks` table
  std::vector<std::string> jobs;      // its luacs.job names, in run order ("wifi (off)")
  std::vector<std::string> warnings;  // "file:line: ..." (misspelt hooks, redefinitions)
  std::chrono::system_clock::time_point loaded_at{};
};

struct CheckResult {
  bool ok = false;
  std::string error;  // "file:line: message" (or "dir: message")
  std::vector<std::string> warnings;
  std::shared_ptr<const Policy> policy;  // when ok (generation 0: not published)
};

// Reads every *.lua file directly in `dir` (in byte order of the names),
// compiles them as text, runs them in a fresh sandboxed state, resolves the
// hooks and checks their types. No side effect: this is `luacs check`.
CheckResult check(const std::string& dir, const Limits& limits);

// The policy all workers serve, and what became of the last reload.
class PolicyManager {
 public:
  // `dir` empty: no policy at all (hooks cost nothing, tasks.* fail).
  PolicyManager(std::string dir, Limits limits);

  // Checks the folder again and, if it is good, publishes it as the next
  // generation. Any thread; reloads are serialised. On failure the current
  // policy keeps serving and the result holds the error.
  CheckResult reload();

  // The policy new sessions get; nullptr when there is none.
  std::shared_ptr<const Policy> current() const;
  // Its generation (0: none): a cheap test for the workers.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  struct Status {
    std::string dir;
    uint64_t generation = 0;
    std::chrono::system_clock::time_point loaded_at{};
    std::vector<std::string> hooks, tasks, warnings;
    // The last reload that failed, if it came after the current generation.
    std::string last_error;
    std::chrono::system_clock::time_point last_error_at{};
    uint64_t reloads = 0, reload_failures = 0;  // every load, the first at start-up included
  };
  Status status() const;
  const Limits& limits() const { return limits_; }
  const std::string& dir() const { return dir_; }

  // Counters the workers add to (relaxed).
  std::atomic<uint64_t> hook_calls{0};
  std::atomic<uint64_t> hook_errors{0};
  std::atomic<uint64_t> hook_time_ns{0};
  // Bytes held by each worker's Lua states, and the generation it runs new
  // sessions with (0: none loaded yet), as of its last new session.
  static constexpr int kMaxWorkers = 256;
  std::array<std::atomic<uint64_t>, kMaxWorkers> lua_bytes{};
  std::array<std::atomic<uint64_t>, kMaxWorkers> worker_generation{};

 private:
  std::string dir_;
  Limits limits_;
  mutable std::mutex mu_;
  std::mutex reload_mu_;
  std::shared_ptr<const Policy> current_;
  std::atomic<uint64_t> generation_{0};
  uint64_t last_generation_ = 0;
  std::string last_error_;
  std::chrono::system_clock::time_point last_error_at_{};
  uint64_t reloads_ = 0, reload_failures_ = 0;
};

// A file the file server serves, as the policy API points a CPE at it.
struct ServedFile {
  std::string path;    // on the file server: "/<token>/<name>"
  std::string name;    // [A-Za-z0-9._-]+
  std::string sha256;  // of its bytes, lower-case hex
  uint64_t size = 0;   // bytes
};

// What the server does for the policy API. All are called on the worker
// thread and must not block; an empty one is a service this process does
// not have.
struct FileServices {
  // Keeps a RouterOS script for the device as a .alter file and serves it:
  // named `name` (".alter" appended when missing), or without one
  // "<device id>-<sha8>.alter". Throws std::invalid_argument for a name the
  // file server cannot serve.
  std::function<ServedFile(std::string_view device_id, std::string script,
                           const std::optional<std::string>& name)>
      publish_alter;
  // Keeps a MikroTik firmware upgrade manifest listing `urls` and serves it.
  std::function<ServedFile(const std::vector<std::string>& urls)> publish_manifest;
  // The path ("/<token>/<name>") of a file the file server already has (a
  // firmware image in [files] dir, or a published file), or "" if none.
  std::function<std::string(std::string_view name)> path_of;
  // The base URL CPEs fetch files from ("http://acs.example.net:7567"),
  // given the Host header a CPE sent; "" when there is none.
  std::function<std::string(std::string_view host)> base_url;
};

// A TransferComplete or AutonomousTransferComplete the CPE sent in this
// session, for on_transfer_complete.
struct TransferInfo {
  bool autonomous = false;
  std::string command_key;
  uint32_t fault_code = 0;
  std::string fault_string;
  std::string start_time, complete_time;
  // AutonomousTransferComplete only:
  bool is_download = false;
  std::string file_type, transfer_url, target_file_name;
  uint64_t file_size = 0;
};

class State;  // a Lua state loaded with one generation (lua/state.h)

// What a session gives its Run. The pointers are borrowed and must outlive
// the Run (the worker's session slot owns all of them).
struct RunContext {
  cwmp::Session* session = nullptr;
  std::shared_ptr<const device::Device> device;  // as stored; null or empty id: a new device
  device::SessionResult* result = nullptr;       // the policy adds tags, faults, values
  // Borrowed from the session's slot, read only when a policy asks:
  std::string_view host;  // the Host header the CPE sent (for file URLs)
  std::string_view peer;  // "192.0.2.7:4711"
};

// Called with the task's JSON result: ok and {"result": ...}, or not ok and
// {"error": "..."}.
using TaskDone = std::function<void(bool ok, std::string json)>;

// The policy side of one session.
class Run {
 public:
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // A transfer result the CPE sent before the ACS took the turn.
  void transfer_complete(TransferInfo t);
  // Runs tasks.<function>(dev, args) after the hooks; `args_json` is an
  // object (or empty: {}).
  void add_task(std::string function, std::string args_json, TaskDone done);

  enum class Step {
    kWaiting,  // a hook or task asked the CPE something: RPCs are queued
    kIdle,     // nothing (more) to run now
  };
  // Runs hooks and tasks until one waits for the CPE or none is left. Called
  // when the ACS has the turn and the session's queue is empty.
  Step advance();

  // The session is over: a hook still waiting is dropped, `dev` goes stale.
  void end();

  uint64_t generation() const;

  struct Impl;  // lua/run.h

 private:
  friend class Engine;
  explicit Run(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What connection_request_auth(dev) answered.
struct ConnectionRequestAuth {
  std::string username, password;
};

// What authorize(dev, cert) answered.
struct Authorization {
  bool allowed = false;
  std::string reason;  // when refused: the policy's reason, or its error
};

// The policy engine of one worker thread. Not thread-safe: one per worker.
class Engine {
 public:
  Engine(PolicyManager& manager, FileServices files, int worker);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The policy side of a new session, bound to the newest generation, or
  // nullptr when there is no policy (nothing to run, no task function).
  std::unique_ptr<Run> start(RunContext ctx);

  // Whether the newest policy defines connection_request_auth (loading it
  // on this thread if needed).
  bool has_connection_request_auth();
  // Calls connection_request_auth(dev) of the newest policy with `d` as a
  // read-only `dev` (fields, dev:param, dev:params, dev:has_tag, dev:tags;
  // no RPC), under the hook budget. nullopt: no such hook, or it returned
  // nil (the next source of credentials applies), or it failed (`*error`
  // says "file:line: message").
  std::optional<ConnectionRequestAuth> connection_request_auth(const device::Device& d,
                                                               std::string* error);

  // Whether the newest policy defines authorize.
  bool has_authorize();
  // Calls authorize(dev, cert) of the newest policy: `d` as a read-only
  // `dev` (as for connection_request_auth), `cert` a table (subject,
  // issuer, common_name, sans, serial, sha256, not_after, and `bound`: what
  // the [cwmp] tls_cert_binding rule says of it). True admits the device;
  // false or nil, with an optional reason string, refuses it; an error
  // refuses it too (a broken policy never lets a device in).
  Authorization authorize(const device::Device& d, const device::ClientCertificate& cert,
                          bool bound);

  // Lets the garbage collector of the current state take a step (between
  // sessions).
  void idle_gc();

  // Bytes held by this worker's Lua states.
  size_t memory() const;
  uint64_t generation() const;

 private:
  void refresh();  // the newest generation, when it loads here

  PolicyManager& manager_;
  FileServices files_;
  int worker_;
  std::shared_ptr<State> current_;
  uint64_t failed_generation_ = 0;            // a generation that would not load here
  std::vector<std::weak_ptr<State>> states_;  // every state still alive
};

// -1, 0 or 1: RouterOS-style version order ("6.49.10" < "7.1beta2" <
// "7.1rc1" < "7.1" < "7.1.1"). Exposed to policies as luacs.version_compare.
int version_compare(std::string_view a, std::string_view b);

}  // namespace luacs::lua
