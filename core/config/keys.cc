// Every key of the ini file, with how its value is read (core/config/parse.h).
// Documented, with its default, in etc/luacs.ini.
#include "core/config/parse.h"
#include "core/util/net.h"
#include "core/util/text.h"

namespace luacs::config::ini {

namespace {

const Key kKeys[] = {
    {"cwmp", "listen",
     [](Parser& p, std::string_view v) {
       p.cfg.listen = listen_list(v);
       p.listen_line = p.line;
     }},
    {"cwmp", "workers",
     [](Parser& p, std::string_view v) { p.cfg.workers = unsigned_in(v, 0, 256); }},
    {"cwmp", "listen_backlog",
     [](Parser& p, std::string_view v) { p.cfg.listen_backlog = unsigned_in(v, 1, 1 << 20); }},
    {"cwmp", "cookie_name",
     [](Parser& p, std::string_view v) {
       if (!is_token(v) || v.size() > 64)
         throw ValueError{"not a cookie name (1..64 letters, digits or !#$%&'*+-.^_`|~)"};
       p.cfg.cookie_name = std::string(v);
     }},
    {"cwmp", "tls_cert",
     [](Parser& p, std::string_view v) {
       p.cfg.tls_cert = path_list(v);
       p.tls_cert_line = p.line;
     }},
    {"cwmp", "tls_key",
     [](Parser& p, std::string_view v) {
       p.cfg.tls_key = path_list(v);
       p.tls_cert_line = p.line;
     }},
    {"cwmp", "tls_min_version",
     [](Parser& p, std::string_view v) {
       if (v != "1.0" && v != "1.1" && v != "1.2" && v != "1.3")
         throw ValueError{"expected 1.0, 1.1, 1.2 or 1.3"};
       p.cfg.tls_min_version = std::string(v);
     }},
    {"cwmp", "tls_ciphers",
     [](Parser& p, std::string_view v) { p.cfg.tls_ciphers = std::string(v); }},
    {"cwmp", "tls_ciphersuites",
     [](Parser& p, std::string_view v) { p.cfg.tls_ciphersuites = std::string(v); }},
    {"cwmp", "tls_session_cache",
     [](Parser& p, std::string_view v) { p.cfg.tls_session_cache = unsigned_in(v, 0, 10'000'000); }},
    {"cwmp", "tls_session_tickets",
     [](Parser& p, std::string_view v) { p.cfg.tls_session_tickets = bool_in(v); }},
    {"cwmp", "tls_ticket_key_rotation",
     [](Parser& p, std::string_view v) {
       p.cfg.tls_ticket_key_rotation = duration_in(v, milliseconds{60'000}, 7 * kDay);
     }},
    {"cwmp", "tls_handshake_timeout",
     [](Parser& p, std::string_view v) { p.cfg.tls_handshake_timeout = timeout_in(v); }},
    {"cwmp", "tls_client_ca",
     [](Parser& p, std::string_view v) { p.cfg.tls_client_ca = std::string(v); }},
    {"cwmp", "tls_client_auth",
     [](Parser& p, std::string_view v) {
       if (v != "none" && v != "optional" && v != "required")
         throw ValueError{"expected none, optional or required"};
       p.cfg.tls_client_auth = std::string(v);
       p.tls_client_auth_line = p.line;
     }},
    {"cwmp", "tls_crl", [](Parser& p, std::string_view v) { p.cfg.tls_crl = std::string(v); }},
    {"cwmp", "tls_cert_binding",
     [](Parser& p, std::string_view v) {
       if (v == "none")
         p.cfg.tls_cert_binding = CertBinding::kNone;
       else if (v == "serial")
         p.cfg.tls_cert_binding = CertBinding::kSerial;
       else if (v == "device_id")
         p.cfg.tls_cert_binding = CertBinding::kDeviceId;
       else
         throw ValueError{"expected none, serial or device_id"};
     }},
    {"cwmp", "tls_cert_binding_in",
     [](Parser& p, std::string_view v) {
       if (v == "cn")
         p.cfg.tls_cert_binding_in = CertBindingField::kCommonName;
       else if (v == "san")
         p.cfg.tls_cert_binding_in = CertBindingField::kSan;
       else if (v == "any")
         p.cfg.tls_cert_binding_in = CertBindingField::kAny;
       else
         throw ValueError{"expected cn, san or any"};
     }},

    {"limits", "max_body_bytes",
     [](Parser& p, std::string_view v) {
       p.cfg.max_body_bytes = size_in(v, 1 << 10, uint64_t{16} << 30);
     }},
    {"limits", "max_header_bytes",
     [](Parser& p, std::string_view v) { p.cfg.max_header_bytes = size_in(v, 1 << 10, 16 << 20); }},
    {"limits", "xml_max_depth",
     [](Parser& p, std::string_view v) { p.cfg.xml_max_depth = number_in(v, 8, 1024); }},
    {"limits", "xml_max_token",
     [](Parser& p, std::string_view v) { p.cfg.xml_max_token = size_in(v, 1024, 16 << 20); }},
    {"limits", "rpcs_per_session",
     [](Parser& p, std::string_view v) { p.cfg.rpcs_per_session = unsigned_in(v, 1, 1'000'000); }},
    {"limits", "cpe_requests_per_session",
     [](Parser& p, std::string_view v) {
       p.cfg.cpe_requests_per_session = unsigned_in(v, 1, 100'000);
     }},
    {"limits", "max_session_bytes",
     [](Parser& p, std::string_view v) {
       p.cfg.max_session_bytes = size_in(v, 1 << 10, uint64_t{64} << 30);
     }},
    {"limits", "max_abandoned_bytes",
     [](Parser& p, std::string_view v) {
       p.cfg.max_abandoned_bytes = size_in(v, 1 << 10, uint64_t{64} << 30);
     }},
    {"limits", "reply_high_water",
     [](Parser& p, std::string_view v) { p.cfg.reply_high_water = size_in(v, 1 << 10, 1 << 30); }},
    {"limits", "sessions_per_address",
     [](Parser& p, std::string_view v) {
       p.cfg.sessions_per_address = unsigned_in(v, 0, 10'000'000);
     }},
    {"limits", "session_same_address",
     [](Parser& p, std::string_view v) { p.cfg.session_same_address = bool_in(v); }},
    {"limits", "session_timeout",
     [](Parser& p, std::string_view v) { p.cfg.session_timeout = timeout_in(v); }},
    {"limits", "idle_timeout",
     [](Parser& p, std::string_view v) { p.cfg.idle_timeout = timeout_in(v); }},
    {"limits", "header_timeout",
     [](Parser& p, std::string_view v) { p.cfg.header_timeout = timeout_in(v); }},
    {"limits", "body_timeout",
     [](Parser& p, std::string_view v) { p.cfg.body_timeout = timeout_in(v); }},
    {"limits", "keepalive_timeout",
     [](Parser& p, std::string_view v) { p.cfg.keepalive_timeout = timeout_in(v); }},
    {"limits", "max_sessions",
     [](Parser& p, std::string_view v) { p.cfg.max_sessions = unsigned_in(v, 1, 100'000'000); }},
    {"limits", "max_connections",
     [](Parser& p, std::string_view v) { p.cfg.max_connections = unsigned_in(v, 1, 100'000'000); }},
    {"limits", "max_queue_delay",
     [](Parser& p, std::string_view v) {
       p.cfg.max_queue_delay =
           v == "0" ? milliseconds{0} : duration_in(v, milliseconds{1}, milliseconds{60'000});
     }},
    {"limits", "retry_after_s",
     [](Parser& p, std::string_view v) { p.cfg.retry_after_s = unsigned_in(v, 1, 86'400); }},

    {"auth", "mode",
     [](Parser& p, std::string_view v) {
       if (v == "none")
         p.cfg.auth_mode = AuthMode::kNone;
       else if (v == "digest")
         p.cfg.auth_mode = AuthMode::kDigest;
       else
         throw ValueError{"expected none or digest"};
       p.mode_line = p.line;
     }},
    {"auth", "realm",
     [](Parser& p, std::string_view v) {
       if (!is_realm(v))
         throw ValueError{"not a realm (1..128 printable ASCII characters, no '\"' or '\\')"};
       p.cfg.realm = std::string(v);
     }},
    {"auth", "allow_basic",
     [](Parser& p, std::string_view v) {
       if (v == "tls") {
         p.cfg.allow_basic = BasicAuth::kTls;
         return;
       }
       try {
         p.cfg.allow_basic = bool_in(v) ? BasicAuth::kAlways : BasicAuth::kOff;
       } catch (const ValueError&) {
         throw ValueError{"expected false, tls (inside TLS only) or true (also on plain HTTP)"};
       }
     }},
    {"auth", "certificate_alone",
     [](Parser& p, std::string_view v) {
       p.cfg.certificate_alone = bool_in(v);
       p.certificate_alone_line = p.line;
     }},
    {"auth", "nonce_lifetime",
     [](Parser& p, std::string_view v) {
       const auto d = duration_in(v, milliseconds{1000}, kDay);
       if (d.count() % 1000 != 0) throw ValueError{"must be a whole number of seconds"};
       p.cfg.nonce_lifetime = std::chrono::duration_cast<std::chrono::seconds>(d);
     }},
    {"auth", "username",
     [](Parser& p, std::string_view v) {
       if (v.empty()) throw ValueError{"must not be empty"};
       if (v.find(':') != std::string_view::npos) throw ValueError{"must not contain ':'"};
       p.username = std::string(v);
       p.username_line = p.line;
     }},
    {"auth", "password",  // never echoed: see on_key()
     [](Parser& p, std::string_view v) {
       if (v.empty()) throw ValueError{"must not be empty"};
       p.password = std::string(v);
       p.password_line = p.line;
     }},

    {"store", "dsn", [](Parser& p, std::string_view v) { p.cfg.store_dsn = std::string(v); }},
    {"store", "sql_dir", [](Parser& p, std::string_view v) { p.cfg.sql_dir = std::string(v); }},
    {"store", "flush_interval",
     [](Parser& p, std::string_view v) {
       p.cfg.store_flush_interval = duration_in(v, milliseconds{1}, milliseconds{10'000});
     }},
    {"store", "batch_rows",
     [](Parser& p, std::string_view v) { p.cfg.store_batch_rows = unsigned_in(v, 1, 100'000); }},
    {"store", "max_pending",
     [](Parser& p, std::string_view v) {
       p.cfg.store_max_pending = unsigned_in(v, 100, 100'000'000);
     }},
    {"store", "cache_devices",
     [](Parser& p, std::string_view v) {
       p.cfg.store_cache_devices = unsigned_in(v, 0, 100'000'000);
     }},
    {"store", "cache_memory",
     [](Parser& p, std::string_view v) {
       p.cfg.store_cache_bytes = size_in(v, 1 << 20, uint64_t{1} << 40);
     }},
    {"store", "max_backlog",
     [](Parser& p, std::string_view v) {
       p.cfg.store_max_backlog = unsigned_in(v, 1, 100'000'000);
     }},
    {"store", "session_log_retention",
     [](Parser& p, std::string_view v) {
       p.cfg.session_log_retention = duration_in(v, milliseconds{60'000}, kDay * 3650);
     }},

    {"policy", "dir", [](Parser& p, std::string_view v) { p.cfg.policy_dir = std::string(v); }},
    {"policy", "max_instructions",
     [](Parser& p, std::string_view v) {
       p.cfg.policy_max_instructions = number_in(v, 1000, uint64_t{1} << 40);
     }},
    {"policy", "time_limit",
     [](Parser& p, std::string_view v) {
       p.cfg.policy_time_limit = duration_in(v, milliseconds{1}, milliseconds{60'000});
     }},
    {"policy", "memory_limit",
     [](Parser& p, std::string_view v) {
       p.cfg.policy_memory_limit = size_in(v, 1 << 20, uint64_t{16} << 30);
     }},
    {"policy", "batch_size",
     [](Parser& p, std::string_view v) { p.cfg.policy_batch_size = unsigned_in(v, 1, 1024); }},

    {"files", "listen",
     [](Parser& p, std::string_view v) {
       const auto l = listen_list(v);
       if (l.size() != 1) throw ValueError{"expected one address, host:port or https://host:port"};
       p.cfg.files_listen = l[0];
       p.files_listen_line = p.line;
     }},
    {"files", "url",
     [](Parser& p, std::string_view v) {
       if (!v.empty() && v.substr(0, 7) != "http://" && v.substr(0, 8) != "https://")
         throw ValueError{"expected an http:// or https:// URL"};
       std::string url(v);
       while (!url.empty() && url.back() == '/') url.pop_back();
       p.cfg.files_url = std::move(url);
       p.files_url_line = p.line;
     }},
    {"files", "dir", [](Parser& p, std::string_view v) { p.cfg.files_dir = std::string(v); }},
    {"files", "secret", [](Parser& p, std::string_view v) { p.cfg.files_secret = std::string(v); }},

    {"nbi", "listen",
     [](Parser& p, std::string_view v) {
       const auto l = listen_list(v);
       if (l.size() != 1) throw ValueError{"expected one address, host:port or https://host:port"};
       p.cfg.nbi_listen = l[0];
       p.nbi_listen_line = p.line;
     }},
    {"nbi", "db_connections",
     [](Parser& p, std::string_view v) { p.cfg.nbi_db_connections = unsigned_in(v, 1, 64); }},
    {"nbi", "max_body",
     [](Parser& p, std::string_view v) { p.cfg.nbi_max_body = size_in(v, 1024, uint64_t{1} << 30); }},
    {"nbi", "max_file_bytes",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_max_file_bytes = size_in(v, 1024, uint64_t{1} << 40);
     }},
    {"nbi", "online_window",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_online_window = duration_in(v, milliseconds{1000}, kDay * 365);
     }},
    {"nbi", "event_buffer",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_event_buffer = size_in(v, 4096, uint64_t{1} << 30);
     }},
    {"nbi", "web_dir", [](Parser& p, std::string_view v) { p.cfg.nbi_web_dir = std::string(v); }},
    {"nbi", "web_session_idle",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_web_session_idle = duration_in(v, milliseconds{60'000}, kDay * 30);
     }},
    {"nbi", "web_session_max",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_web_session_max = duration_in(v, milliseconds{60'000}, kDay * 365);
     }},
    {"nbi", "history_step",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_history_step = duration_in(v, milliseconds{1000}, milliseconds{3'600'000});
     }},
    {"nbi", "overview_refresh",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_overview_refresh = duration_in(v, milliseconds{1000}, milliseconds{3'600'000});
     }},
    {"stun", "listen",
     [](Parser& p, std::string_view v) {
       p.cfg.stun_listen.clear();
       if (v.empty()) return;
       p.cfg.stun_listen = listen_list(v);
       for (const auto& l : p.cfg.stun_listen)
         if (l.tls) throw ValueError{"STUN is UDP: no https:// prefix"};
     }},
    {"stun", "retries",
     [](Parser& p, std::string_view v) { p.cfg.stun_retries = unsigned_in(v, 1, 10); }},
    {"stun", "retry_interval",
     [](Parser& p, std::string_view v) {
       p.cfg.stun_retry_interval = duration_in(v, milliseconds{10}, milliseconds{60'000});
     }},
    {"stun", "replay_window",
     [](Parser& p, std::string_view v) {
       p.cfg.stun_replay_window = duration_in(v, milliseconds{1}, milliseconds{3'600'000});
     }},
    {"connection_request", "allow",
     [](Parser& p, std::string_view v) { p.cfg.cr_allow = cidr_list(v); }},
    {"connection_request", "deny",
     [](Parser& p, std::string_view v) { p.cfg.cr_deny = cidr_list(v); }},
    {"connection_request", "ports",
     [](Parser& p, std::string_view v) { p.cfg.cr_ports = port_ranges(v); }},
    {"connection_request", "timeout",
     [](Parser& p, std::string_view v) {
       p.cfg.cr_timeout = duration_in(v, milliseconds{100}, milliseconds{60'000});
     }},
    {"connection_request", "max_concurrent",
     [](Parser& p, std::string_view v) { p.cfg.cr_max_concurrent = unsigned_in(v, 1, 100'000); }},
    {"connection_request", "username",
     [](Parser& p, std::string_view v) { p.cfg.cr_username = std::string(v); }},
    {"connection_request", "password",  // never echoed: see on_key()
     [](Parser& p, std::string_view v) { p.cfg.cr_password = std::string(v); }},
    {"connection_request", "allow_basic",
     [](Parser& p, std::string_view v) { p.cfg.cr_allow_basic = bool_in(v); }},

    {"metrics", "allow",
     [](Parser& p, std::string_view v) {
       std::vector<std::string> out;
       for (auto item : util::split_list(v)) {
         if (!util::parse_cidr(item)) throw ValueError{"'" + std::string(item) + "' is not a CIDR (192.0.2.0/24, ::1/128)"};
         out.emplace_back(item);
       }
       p.cfg.metrics_allow = std::move(out);
     }},

    {"xmpp", "jid",
     [](Parser& p, std::string_view v) {
       if (!v.empty() && !is_jid(v))
         throw ValueError{"not a JID (user@domain or user@domain/resource)"};
       p.cfg.xmpp_jid = std::string(v);
       p.xmpp_jid_line = p.line;
     }},
    {"xmpp", "password",
     [](Parser& p, std::string_view v) { p.cfg.xmpp_password = std::string(v); }},
    {"xmpp", "server",
     [](Parser& p, std::string_view v) {
       if (!v.empty() && !is_host_port(v))
         throw ValueError{"expected host or host:port (port 1..65535)"};
       p.cfg.xmpp_server = std::string(v);
     }},
    {"xmpp", "tls",
     [](Parser& p, std::string_view v) {
       if (v == "required")
         p.cfg.xmpp_tls = XmppTls::kRequired;
       else if (v == "optional")
         p.cfg.xmpp_tls = XmppTls::kOptional;
       else if (v == "off")
         p.cfg.xmpp_tls = XmppTls::kOff;
       else
         throw ValueError{"expected required, optional or off"};
     }},
    {"xmpp", "timeout",
     [](Parser& p, std::string_view v) {
       p.cfg.xmpp_timeout = duration_in(v, milliseconds{100}, milliseconds{300'000});
     }},

    {"control", "socket",
     [](Parser& p, std::string_view v) { p.cfg.control_socket = std::string(v); }},

    {"log", "level",
     [](Parser& p, std::string_view v) {
       if (v != "debug" && v != "info" && v != "warn" && v != "error")
         throw ValueError{"expected debug, info, warn or error"};
       p.cfg.log_level = std::string(v);
     }},
    {"log", "file", [](Parser& p, std::string_view v) { p.cfg.log_file = std::string(v); }},
    {"log", "warnings_per_source",
     [](Parser& p, std::string_view v) {
       p.cfg.log_warnings_per_source = unsigned_in(v, 0, 1'000'000);
     }},
};

}  // namespace

std::span<const Key> keys() {
  return kKeys;
}

}  // namespace luacs::config::ini
