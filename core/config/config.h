// The static configuration: etc/luacs.ini, read once at start-up with inih.
//
// Anything the file gets wrong stops start-up with `file:line: message`:
// an unknown section or key (a misspelt `wokers` must not silently become the
// default), a bad value, a key given twice. etc/luacs.ini documents every key
// with its default. Passwords never appear in an error message.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace luacs::config {

// what() is "path:line: message", or "path: cannot open: <reason>".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One entry of [cwmp] listen: "0.0.0.0:7547", "[::]:7547", "127.0.0.1:7547";
// an "https://" prefix makes it a TLS listener ("http://" is allowed too).
// `host` is a numeric IPv4 or IPv6 address, without the brackets.
struct ListenAddress {
  std::string host;
  uint16_t port = 7547;
  bool tls = false;
  bool operator==(const ListenAddress&) const = default;
};

// A CPE login. device_id empty = valid for any device; otherwise only for the
// device with that id (as cwmp::device_id() spells it).
struct CpeCredential {
  std::string username;
  std::string password;
  std::string device_id;
};

// kDigest: Digest required; Basic accepted too where allow_basic says.
enum class AuthMode { kNone, kDigest };

// [auth] allow_basic: where a CPE may send its password in the clear (Basic):
// never, only inside TLS (an https:// listener), or also on plain HTTP (a
// risk: for old CPEs on a closed network).
enum class BasicAuth { kOff, kTls, kAlways };

// [cwmp] tls_cert_binding: what a client certificate must name to be
// accepted for the device that informs with it (core/tls/binding.h).
enum class CertBinding { kNone, kSerial, kDeviceId };
// [cwmp] tls_cert_binding_in: where the certificate names it.
enum class CertBindingField { kCommonName, kSan, kAny };

// [xmpp] tls: kRequired = STARTTLS with a verified certificate or no login;
// kOptional = STARTTLS when the server offers it; kOff = never.
enum class XmppTls { kRequired, kOptional, kOff };

struct Config {
  std::string path;  // where it was read from

  // [cwmp]
  std::vector<ListenAddress> listen{{"0.0.0.0", 7547, false}};  // `listen`, comma-separated
  unsigned workers = 0;                                         // 0 = one per core
  unsigned listen_backlog = 4096;
  std::string cookie_name = "session";
  // TLS of the https:// listeners (docs/tls.md). `tls_cert` and `tls_key`
  // are comma-separated lists paired in order (an ECDSA and an RSA pair side
  // by side); required by an https:// listener.
  std::vector<std::string> tls_cert;    // PEM certificate chains
  std::vector<std::string> tls_key;     // their PEM private keys
  std::string tls_min_version = "1.2";  // 1.0 | 1.1 | 1.2 | 1.3 (1.0/1.1: a risk)
  std::string tls_ciphers;              // TLS <= 1.2, OpenSSL syntax; "" = OpenSSL's default
  std::string tls_ciphersuites;         // TLS 1.3; "" = OpenSSL's default
  unsigned tls_session_cache = 20'000;  // sessions kept for resumption by id; 0 = off
  bool tls_session_tickets = true;
  std::chrono::milliseconds tls_ticket_key_rotation{12 * 3'600'000};
  std::chrono::milliseconds tls_handshake_timeout{10'000};  // accept -> handshake done
  std::string tls_client_ca;             // PEM CAs of client certificates; "" = none asked
  std::string tls_client_auth = "none";  // none | optional | required
  std::string tls_crl;                   // PEM CRLs of those CAs; "" = none checked
  CertBinding tls_cert_binding = CertBinding::kSerial;            // none | serial | device_id
  CertBindingField tls_cert_binding_in = CertBindingField::kAny;  // cn | san | any

  // [limits]
  uint64_t max_body_bytes = 16 << 20;  // sizes take K, M, G (binary) suffixes: "16M"
  size_t max_header_bytes = 16 << 10;
  size_t xml_max_depth = 32;
  size_t xml_max_token = 64 << 10;  // one tag, name, comment or reference (bytes)
  unsigned rpcs_per_session = 255;
  unsigned cpe_requests_per_session = 64;  // TransferComplete, GetRPCMethods, ... from the CPE
  // Body bytes (after decompression) of all the requests of one session;
  // past it the session ends with a 413.
  uint64_t max_session_bytes = 64 << 20;
  // Per worker: the body bytes that sessions whose connection has gone may
  // hold together; past it the largest of them are ended.
  uint64_t max_abandoned_bytes = 64 << 20;
  // Replies not yet taken by the client: past this, the connection is not
  // read until they are.
  size_t reply_high_water = 1 << 20;
  // Live sessions begun from one address; 0 = no limit (CGNAT puts many
  // CPEs behind one address).
  unsigned sessions_per_address = 0;
  // A session's cookie on a new connection continues it only from the
  // address the session began from.
  bool session_same_address = true;
  // Durations: "30" (seconds), "30s", "500ms", "5m", "1h".
  std::chrono::milliseconds session_timeout{300'000};   // whole session
  std::chrono::milliseconds idle_timeout{30'000};       // between two messages of a session
  std::chrono::milliseconds header_timeout{10'000};     // first byte -> end of head (slow loris)
  std::chrono::milliseconds body_timeout{30'000};       // end of head -> end of body
  std::chrono::milliseconds keepalive_timeout{60'000};  // idle connection between requests
  unsigned max_sessions = 100'000;  // live CWMP sessions; more -> 503 + Retry-After
  unsigned max_connections = 200'000;
  // A new connection whose first request waited longer than this inside
  // luacs (accepted, not yet read: the workers are saturated) gets 503 for a
  // new session; 0 = never. Keeps latency bounded at overload (CoDel-like).
  std::chrono::milliseconds max_queue_delay{50};
  unsigned retry_after_s = 60;

  // [auth]
  AuthMode auth_mode = AuthMode::kNone;  // `mode` = none | digest
  std::string realm = "luacs";
  BasicAuth allow_basic = BasicAuth::kOff;  // `allow_basic` = false | tls | true
  // A verified client certificate bound to the device authenticates it
  // without Digest (needs tls_cert_binding).
  bool certificate_alone = false;
  std::chrono::seconds nonce_lifetime{300};
  // [auth] username/password give one login for any device (listed first);
  // [auth.devices] lines `<device id> = <username>:<password>` add
  // per-device logins (the password may contain ':').
  std::vector<CpeCredential> credentials;

  // [store]
  std::string
      store_dsn;  // libpq connection string; "" = none configured (scripts start a private cluster)
  std::string sql_dir = "sql";                        // migrations, applied at start-up
  std::chrono::milliseconds store_flush_interval{5};  // write-behind flush period
  unsigned store_batch_rows = 500;                    // ... or when a batch has this many rows
  unsigned store_max_pending = 200'000;               // results kept while PostgreSQL is away
  unsigned store_cache_devices = 1'000'000;           // devices kept in memory
  uint64_t store_cache_bytes = uint64_t{64} << 20;    // ... and at most about this much of them
  unsigned store_max_backlog = 20'000;  // writes not yet committed: more -> new sessions get 503
  std::chrono::milliseconds session_log_retention{7 * 24 * 3'600'000};

  // [policy]
  std::string policy_dir;  // `dir`: the policy folder; "" = no policy (tasks still run)
  uint64_t policy_max_instructions = 10'000'000;     // per hook call (VM instructions)
  std::chrono::milliseconds policy_time_limit{100};  // per hook call, time spent running
  uint64_t policy_memory_limit = 64 << 20;           // per Lua state (one per worker)
  unsigned policy_batch_size = 32;                   // names per Get/SetParameter* RPC

  // [files]
  // `listen`; port 0 = any free port; https:// serves [cwmp] tls_cert (no client certificate)
  ListenAddress files_listen{"0.0.0.0", 7567, false};
  std::string files_url;  // `url`: base URL CPEs fetch files from; "" = from the Host header
  std::string files_dir = "var/files";  // `dir`: firmware images and other files on disk
  std::string files_secret;  // `secret`: key of the URL tokens of files in `dir`; "" = random

  // [nbi]: the northbound REST API (docs/nbi.md)
  // `listen`; port 0 = any free port; https:// serves [cwmp] tls_cert (no client certificate)
  ListenAddress nbi_listen{"0.0.0.0", 7557, false};
  unsigned nbi_db_connections = 2;                           // its own PostgreSQL connections
  uint64_t nbi_max_body = 1 << 20;                           // JSON bodies; larger -> 413
  uint64_t nbi_max_file_bytes = uint64_t{4} << 30;           // PUT /files/{name}
  std::chrono::milliseconds nbi_online_window{15 * 60'000};  // `online`: informed this recently
  uint64_t nbi_event_buffer = 1 << 20;  // per /events client; a slower one is dropped
  std::string nbi_web_dir = "web";      // `web_dir`: the operator page's files; "" = no page
  std::chrono::milliseconds nbi_web_session_idle{12 * 3'600'000};     // a page login unused
  std::chrono::milliseconds nbi_web_session_max{7 * 24 * 3'600'000};  // a page login at most
  std::chrono::milliseconds nbi_history_step{60'000};      // GET /metrics/history's sample period
  std::chrono::milliseconds nbi_overview_refresh{30'000};  // GET /overview's figures recomputed

  // [stun]: the built-in STUN server of TR-111 (docs/connection-requests.md)
  std::vector<ListenAddress> stun_listen;  // `listen`, comma-separated; empty = off
  unsigned stun_retries = 3;               // datagrams per UDP connection request (same id)
  std::chrono::milliseconds stun_retry_interval{500};  // first gap; each next one doubles
  std::chrono::milliseconds stun_replay_window{5000};  // no second request to a target sooner
  // [connection_request]: how luacs wakes a device (docs/connection-requests.md)
  // `allow` / `deny`: the addresses luacs will contact (CIDRs; deny wins).
  std::vector<std::string> cr_allow{"0.0.0.0/0", "::/0"};
  // `::` and 0.0.0.0 reach the host itself on Linux, like loopback.
  std::vector<std::string> cr_deny{"127.0.0.0/8", "::1/128",   "169.254.0.0/16",
                                   "fe80::/10",   "0.0.0.0/8", "::/128"};
  // `ports`: the ports a ConnectionRequestURL may name ("80, 1024-65535").
  std::vector<std::pair<uint16_t, uint16_t>> cr_ports{{80, 80}, {1024, 65535}};
  std::chrono::milliseconds cr_timeout{2000};  // one whole attempt (connect .. answer)
  unsigned cr_max_concurrent = 100;            // attempts in flight; more wait in a queue
  std::string cr_username;                     // the fleet's ConnectionRequestUsername
  std::string cr_password;                     // ... and password
  bool cr_allow_basic = false;                 // answer a Basic challenge (sends the password)

  // [metrics]
  // `allow`: CIDRs that may GET /metrics without a token (default loopback).
  std::vector<std::string> metrics_allow{"127.0.0.0/8", "::1/128"};

  // [xmpp]: luacs as an XMPP client, for connection requests through the
  // operator's XMPP server (TR-069 Annex K, docs/connection-requests.md).
  std::string xmpp_jid;       // `jid`: luacs' account, user@domain[/resource]; "" = XMPP off
  std::string xmpp_password;  // `password`: a secret, never logged
  std::string xmpp_server;    // `server`: host[:port]; "" = from the JID's domain (SRV records)
  XmppTls xmpp_tls = XmppTls::kRequired;          // `tls` = required | optional | off
  std::chrono::milliseconds xmpp_timeout{5'000};  // `timeout`: per connection request

  // [control]
  std::string control_socket = "var/luacs.sock";  // `socket`: `luacs reload` talks to it; "" = none

  // [log]
  std::string log_level = "info";  // `level` = debug | info | warn | error
  std::string log_file;            // `file`; "" = stderr
  // Warnings about one peer address, per minute; the rest are counted and
  // summed up in the next line let through. 0 = no limit.
  unsigned log_warnings_per_source = 20;
};

// Reads and validates a file. Throws ConfigError.
Config load(const std::string& path);
// The same from memory; `name` stands for the path in messages (tests).
Config parse(std::string_view text, const std::string& name);

}  // namespace luacs::config
