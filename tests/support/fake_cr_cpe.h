// A CPE's connection-request listener, scripted, on 127.0.0.1: a thread that
// accepts connections one after the other, reads each request head and
// answers what the script says. Tests of core/connreq and of the API's
// connection requests use it; every wait has a bound so a test cannot hang.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace luacs::test {

class FakeCrCpe {
 public:
  struct Request {
    int connection = 0;         // 1, 2, ... in accept order
    std::string head;           // the whole request head, CRLFs included
    std::string target;         // "/cr"
    std::string authorization;  // the header's value, "" if absent
  };
  struct Reply {
    std::string bytes;   // sent as they are
    bool close = false;  // close the connection after sending
    bool hang = false;   // send nothing and keep the connection until the peer closes
  };
  // Runs on the CPE's thread for each request; `n` counts requests from 1.
  using Script = std::function<Reply(const Request& r, int n)>;

  explicit FakeCrCpe(Script script);
  ~FakeCrCpe();
  FakeCrCpe(const FakeCrCpe&) = delete;
  FakeCrCpe& operator=(const FakeCrCpe&) = delete;

  uint16_t port() const { return port_; }
  std::vector<Request> requests() const;
  int connections() const { return connections_.load(); }
  // Waits (bounded) until `n` requests have arrived.
  bool wait_requests(size_t n, std::chrono::milliseconds limit = std::chrono::seconds(5)) const;

  // Helpers for scripts.
  static Reply status(int code, const std::string& extra_headers = "", bool close = false);
  static Reply challenge(const std::string& www_authenticate, bool close = false);
  // Whether `authorization` is a correct Digest MD5 answer for GET `uri`
  // (qop=auth or none) to `nonce` with user/password/realm.
  static bool digest_ok(const std::string& authorization, const std::string& user,
                        const std::string& password, const std::string& realm,
                        const std::string& nonce, const std::string& uri);

 private:
  void run();
  void serve(int fd);

  Script script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<Request> requests_;
  std::thread thread_;
};

}  // namespace luacs::test
