// The real luacs binary as a child process, for tests that restart it, kill
// it or stop its database. It is started with a generated config on
// 127.0.0.1 port 0; the port is read from its log.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace luacs::test {

class LuacsProcess {
 public:
  // `ini` is the config text; "[cwmp] listen = 127.0.0.1:0" and a log
  // level of info are expected (the port is read from the log).
  explicit LuacsProcess(const std::string& ini, std::vector<std::string> extra_args = {});
  ~LuacsProcess();  // SIGKILL if still running
  LuacsProcess(const LuacsProcess&) = delete;
  LuacsProcess& operator=(const LuacsProcess&) = delete;

  // False when it exited before listening; log() says why.
  bool started() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  // The northbound API's port (with_test_defaults puts it on 127.0.0.1:0).
  uint16_t api_port() const { return api_port_; }
  // The child's process id (-1 once it has been waited for), e.g. to send
  // it SIGHUP.
  pid_t pid() const { return pid_; }
  // SIGTERM and wait; the exit status (-1 when killed by a signal).
  int stop(std::chrono::seconds wait = std::chrono::seconds(30));
  void kill9();
  // Everything it has logged so far.
  std::string log();
  // How many lines of the log contain `needle`.
  size_t count(const std::string& needle);

 private:
  // The log is read all along by a thread: a child blocked on a full pipe
  // would stall its event loops.
  void read_log();
  pid_t pid_ = -1;
  int out_ = -1;
  uint16_t port_ = 0;
  uint16_t api_port_ = 0;
  std::mutex mu_;
  std::string log_;
  std::thread reader_;
  std::string config_path_;
};

// A unique temporary file holding `text`; its path.
std::string temp_file(const std::string& name, const std::string& text);

// `ini` with what parallel tests must not share, unless it sets them
// itself: the file server on 127.0.0.1 port 0 and a control socket of its
// own (temporary).
std::string with_test_defaults(std::string ini);

}  // namespace luacs::test
