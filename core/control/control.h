// The control socket: how `luacs reload` talks to the running server.
//
// A Unix stream socket (mode 0600: only the server's own user may use it).
// The client sends one command line ("reload", "status"); the server answers
// with lines and closes. The first line starts with "ok" or "error".
#pragma once

#include <event2/event.h>
#include <event2/listener.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "core/loop/loop.h"

namespace luacs::control {

class ControlServer {
 public:
  // Called on the loop's thread with the command; returns the answer
  // (lines, each ending in '\n').
  using Handler = std::function<std::string(std::string_view command)>;

  // Listens on `path`. A stale socket file is replaced; one a running
  // server still answers on is not (std::runtime_error: another luacs uses
  // it).
  ControlServer(event_base* base, std::string path, Handler handler);
  ~ControlServer();  // closes and removes the socket file
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  static void on_accept(evconnlistener*, evutil_socket_t, sockaddr*, int, void*);
  std::string path_;
  Handler handler_;
  loop::Listener listener_;
};

// Sends one command and returns the whole answer. Blocking: for the
// command line only. Throws std::runtime_error("cannot reach luacs at
// <path>: <reason>").
std::string request(const std::string& path, std::string_view command,
                    std::chrono::milliseconds timeout);

}  // namespace luacs::control
