#include "support/luacs_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

namespace luacs::test {

std::string temp_file(const std::string& name, const std::string& text) {
  static int n = 0;
  auto dir = std::filesystem::temp_directory_path() / ("luacs-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / (std::to_string(++n) + "-" + name);
  std::ofstream(path) << text;
  return path.string();
}

std::string with_test_defaults(std::string ini) {
  static std::atomic<int> n{0};
  if (ini.find("[files]") == std::string::npos) ini += "\n[files]\nlisten = 127.0.0.1:0\n";
  if (ini.find("[nbi]") == std::string::npos) ini += "\n[nbi]\nlisten = 127.0.0.1:0\n";
  if (ini.find("[control]") == std::string::npos) {
    auto sock = std::filesystem::temp_directory_path() /
                ("luacs-" + std::to_string(getpid()) + "-" + std::to_string(++n) + ".sock");
    ini += "\n[control]\nsocket = " + sock.string() + "\n";
  }
  return ini;
}

LuacsProcess::LuacsProcess(const std::string& ini, std::vector<std::string> extra_args) {
  config_path_ = temp_file("luacs.ini", with_test_defaults(ini));
  int fds[2];
  if (pipe(fds) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    std::vector<std::string> args = {LUACS_BINARY, "--config", config_path_};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(LUACS_BINARY, argv.data());
    _exit(127);
  }
  close(fds[1]);
  out_ = fds[0];
  reader_ = std::thread([this] { read_log(); });
  const std::string listening = "listening on 127.0.0.1:";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!port_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::string text = log();
    auto at = text.find(listening);
    if (at != std::string::npos && text.find(' ', at + listening.size()) != std::string::npos) {
      port_ = static_cast<uint16_t>(std::stoi(text.substr(at + listening.size())));
      const std::string api = "API on ";
      if (auto a = text.find(api, at); a != std::string::npos) {
        const auto colon = text.find_first_of(":\n", a + api.size());
        const auto last_colon = text.rfind(':', text.find('\n', a));
        if (colon != std::string::npos && last_colon != std::string::npos && last_colon > a)
          api_port_ = static_cast<uint16_t>(std::stoi(text.substr(last_colon + 1)));
      }
    }
    int st;
    if (!port_ && waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
  }
}

LuacsProcess::~LuacsProcess() {
  kill9();
  if (reader_.joinable()) reader_.join();  // ends at EOF, once the child is gone
  if (out_ >= 0) close(out_);
}

void LuacsProcess::read_log() {
  char buf[8192];
  for (;;) {
    ssize_t n = read(out_, buf, sizeof buf);
    if (n <= 0) return;
    std::lock_guard lock(mu_);
    log_.append(buf, static_cast<size_t>(n));
  }
}

std::string LuacsProcess::log() {
  std::lock_guard lock(mu_);
  return log_;
}

size_t LuacsProcess::count(const std::string& needle) {
  std::string text = log();
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

int LuacsProcess::stop(std::chrono::seconds wait) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + wait;
  int st = 0;
  while (waitpid(pid_, &st, WNOHANG) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (std::chrono::steady_clock::now() > deadline) {
      kill9();
      return -1;
    }
  }
  pid_ = -1;
  if (reader_.joinable()) reader_.join();
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void LuacsProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  waitpid(pid_, &st, 0);
  pid_ = -1;
  if (reader_.joinable()) reader_.join();
}

}  // namespace luacs::test
