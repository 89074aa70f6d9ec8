// A plain blocking HTTP client playing the CPE in integration tests. It talks
// to a real luacs over real loopback sockets; every read has a timeout so a
// test can never hang.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace luacs::test {

struct HttpResponse {
  int status = 0;  // 0: connection closed or timed out before a response
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const;  // first value or ""
  bool has(const std::string& name) const { return headers.count(name) > 0; }
  bool closes() const;  // Connection: close
};

// A blocking TCP connection to 127.0.0.1:port; -1 when refused. `source`:
// the local address to connect from (another 127.x.y.z plays another
// host); "" = the kernel's choice.
int connect_loopback(uint16_t port, const std::string& source = {});

class CpeClient {
 public:
  explicit CpeClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // From the local address `source` (see connect_loopback).
  CpeClient(uint16_t port, const std::string& source,
            std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~CpeClient();
  CpeClient(const CpeClient&) = delete;
  CpeClient& operator=(const CpeClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Sends raw bytes as they are.
  bool send_raw(std::string_view bytes);
  // Reads one response (Content-Length framed; 1xx skipped). `no_body`: the
  // answer to a HEAD, whose Content-Length announces a body that never comes
  // (a 204 or 304 has none either).
  HttpResponse read_response(bool no_body = false);
  // POST with Content-Length; `cookie` is echoed when non-empty.
  HttpResponse post(std::string_view body, const std::vector<std::string>& extra_headers = {});
  // True when the server has closed the connection (reads EOF within timeout).
  // Bytes before the close (a 408, say) are read past, unless `data_allowed`
  // is false: then the close must come with nothing more sent.
  bool closed_by_peer(std::chrono::milliseconds wait = std::chrono::seconds(5),
                      bool data_allowed = true);
  // Closes the connection with a reset (SO_LINGER 0): no FIN.
  void reset();
  // Nothing received is left unread.
  bool nothing_pending() const { return buf_.empty(); }

  // The cookie from the last Set-Cookie seen (name=value), echoed by post().
  std::string cookie;
  bool echo_cookie = true;
  std::string path = "/";

 private:
  bool fill();
  int fd_ = -1;
  std::string buf_;
  std::chrono::milliseconds timeout_;
};

// POSTs `body`; when challenged (401), answers the Digest challenge as
// `user`:`password` (qop=auth) and POSTs it again.
HttpResponse post_with_digest(CpeClient& c, const std::string& body, const std::string& user,
                              const std::string& password);

// Reads a file of ../shared/corpus/cwmp.
std::string corpus_file(const std::string& name);
// The names of corpus files starting with prefix and ending with suffix.
std::vector<std::string> corpus_files(const std::string& prefix, const std::string& suffix);

}  // namespace luacs::test
