// Which worker owns which live session, and which device is in a session.
//
// A session lives on the worker that accepted its Inform. A CPE that comes
// back on a new TCP connection (maybe accepted by another worker) is found by
// its cookie and its connection handed to the owner. A device may have one
// live session at a time. Both lookups are tiny and rare compared with the
// rest of a session, so one mutex is enough.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace luacs::server {

class SessionDirectory {
 public:
  // Owner worker of a session cookie, or -1.
  int owner(std::string_view cookie) const;
  // Registers the session `cookie` on `worker`, begun from `address`.
  // False (nothing registered) when `limit` (> 0) sessions from that
  // address are live already.
  bool add(const std::string& cookie, int worker, const std::string& address = {},
           unsigned limit = 0);
  // Claim `device` for the session `cookie`; false when another live session
  // holds it.
  bool claim_device(const std::string& device, const std::string& cookie);
  // The worker owning `device`'s live session, or -1.
  int device_owner(const std::string& device) const;
  // The cookie of `device`'s live session, or "".
  std::string device_session(const std::string& device) const;
  // Forget a session (and its device claim, if it holds one).
  void remove(const std::string& cookie, const std::string& device);

 private:
  struct Owner {
    int worker;
    std::string address;  // "" when not counted (no per-address limit)
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Owner> owners_;
  std::unordered_map<std::string, unsigned> per_address_;  // live sessions by address
  std::unordered_map<std::string, std::string> devices_;   // device id -> cookie
};

}  // namespace luacs::server
