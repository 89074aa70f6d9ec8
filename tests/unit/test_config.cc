#include "core/config/config.h"

#include <gtest/gtest.h>

#include <string>

namespace luacs::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The message of the ConfigError that parsing `text` throws ("" if none).
std::string error_of(const std::string& text) {
  try {
    parse(text, "t.ini");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ShippedExampleLoadsWithTheDefaults) {
  const std::string path = std::string(LUACS_SOURCE_DIR) + "/etc/luacs.ini";
  const Config c = load(path);
  const Config d;
  EXPECT_EQ(c.path, path);
  EXPECT_EQ(c.listen, d.listen);
  EXPECT_EQ(c.workers, d.workers);
  EXPECT_EQ(c.listen_backlog, d.listen_backlog);
  EXPECT_EQ(c.cookie_name, d.cookie_name);
  EXPECT_EQ(c.tls_cert, d.tls_cert);
  EXPECT_EQ(c.tls_key, d.tls_key);
  EXPECT_EQ(c.tls_min_version, d.tls_min_version);
  EXPECT_EQ(c.tls_ciphers, d.tls_ciphers);
  EXPECT_EQ(c.tls_ciphersuites, d.tls_ciphersuites);
  EXPECT_EQ(c.tls_session_cache, d.tls_session_cache);
  EXPECT_EQ(c.tls_session_tickets, d.tls_session_tickets);
  EXPECT_EQ(c.tls_ticket_key_rotation, d.tls_ticket_key_rotation);
  EXPECT_EQ(c.tls_handshake_timeout, d.tls_handshake_timeout);
  EXPECT_EQ(c.tls_client_ca, d.tls_client_ca);
  EXPECT_EQ(c.tls_client_auth, d.tls_client_auth);
  EXPECT_EQ(c.tls_crl, d.tls_crl);
  EXPECT_EQ(c.max_body_bytes, d.max_body_bytes);
  EXPECT_EQ(c.max_header_bytes, d.max_header_bytes);
  EXPECT_EQ(c.xml_max_depth, d.xml_max_depth);
  EXPECT_EQ(c.rpcs_per_session, d.rpcs_per_session);
  EXPECT_EQ(c.session_timeout, d.session_timeout);
  EXPECT_EQ(c.idle_timeout, d.idle_timeout);
  EXPECT_EQ(c.header_timeout, d.header_timeout);
  EXPECT_EQ(c.body_timeout, d.body_timeout);
  EXPECT_EQ(c.keepalive_timeout, d.keepalive_timeout);
  EXPECT_EQ(c.max_sessions, d.max_sessions);
  EXPECT_EQ(c.max_connections, d.max_connections);
  EXPECT_EQ(c.max_queue_delay, d.max_queue_delay);
  EXPECT_EQ(c.store_cache_bytes, d.store_cache_bytes);
  EXPECT_EQ(c.store_max_backlog, d.store_max_backlog);
  EXPECT_EQ(c.retry_after_s, d.retry_after_s);
  EXPECT_EQ(c.auth_mode, d.auth_mode);
  EXPECT_EQ(c.realm, d.realm);
  EXPECT_EQ(c.nbi_web_dir, d.nbi_web_dir);
  EXPECT_EQ(c.nbi_web_session_idle, d.nbi_web_session_idle);
  EXPECT_EQ(c.nbi_web_session_max, d.nbi_web_session_max);
  EXPECT_EQ(c.nbi_history_step, d.nbi_history_step);
  EXPECT_EQ(c.nbi_overview_refresh, d.nbi_overview_refresh);
  EXPECT_THROW(parse("[nbi]\nhistory_step = 500ms\n", "m.ini"), ConfigError);
  EXPECT_THROW(parse("[nbi]\nweb_session_idle = 1s\n", "m.ini"), ConfigError);
  EXPECT_EQ(c.allow_basic, d.allow_basic);
  EXPECT_EQ(c.nonce_lifetime, d.nonce_lifetime);
  EXPECT_TRUE(c.credentials.empty());
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.log_file, d.log_file);
  EXPECT_EQ(c.nbi_listen, d.nbi_listen);
  EXPECT_EQ(c.nbi_db_connections, d.nbi_db_connections);
  EXPECT_EQ(c.nbi_max_body, d.nbi_max_body);
  EXPECT_EQ(c.nbi_max_file_bytes, d.nbi_max_file_bytes);
  EXPECT_EQ(c.nbi_online_window, d.nbi_online_window);
  EXPECT_EQ(c.nbi_event_buffer, d.nbi_event_buffer);
  EXPECT_EQ(c.metrics_allow, d.metrics_allow);
  EXPECT_EQ(c.xmpp_jid, d.xmpp_jid);
  EXPECT_EQ(c.xmpp_password, d.xmpp_password);
  EXPECT_EQ(c.xmpp_server, d.xmpp_server);
  EXPECT_EQ(c.xmpp_tls, d.xmpp_tls);
  EXPECT_EQ(c.xmpp_timeout, d.xmpp_timeout);
  EXPECT_EQ(c.stun_listen, d.stun_listen);
  EXPECT_TRUE(c.stun_listen.empty());  // off unless set
  EXPECT_EQ(c.stun_retries, d.stun_retries);
  EXPECT_EQ(c.stun_retry_interval, d.stun_retry_interval);
  EXPECT_EQ(c.stun_replay_window, d.stun_replay_window);
  EXPECT_EQ(c.cr_allow, d.cr_allow);
  EXPECT_EQ(c.cr_deny, d.cr_deny);
  EXPECT_EQ(c.cr_ports, d.cr_ports);
  EXPECT_EQ(c.cr_timeout, d.cr_timeout);
  EXPECT_EQ(c.cr_max_concurrent, d.cr_max_concurrent);
  EXPECT_EQ(c.cr_username, d.cr_username);
  EXPECT_EQ(c.cr_password, d.cr_password);
  EXPECT_EQ(c.cr_allow_basic, d.cr_allow_basic);
}

TEST(Config, XmppSection) {
  const Config d;
  EXPECT_EQ(d.xmpp_jid, "");
  EXPECT_EQ(d.xmpp_tls, XmppTls::kRequired);
  EXPECT_EQ(d.xmpp_timeout, milliseconds{5000});
  const Config c = parse(
      "[xmpp]\njid = acs@xmpp.example.net/luacs\npassword = s3cret\nserver = 192.0.2.1:5223\n"
      "tls = optional\ntimeout = 1500ms\n",
      "x.ini");
  EXPECT_EQ(c.xmpp_jid, "acs@xmpp.example.net/luacs");
  EXPECT_EQ(c.xmpp_password, "s3cret");
  EXPECT_EQ(c.xmpp_server, "192.0.2.1:5223");
  EXPECT_EQ(c.xmpp_tls, XmppTls::kOptional);
  EXPECT_EQ(c.xmpp_timeout, milliseconds{1500});
  EXPECT_EQ(parse("[xmpp]\ntls = off\nserver = [2001:db8::1]:5222\n", "x.ini").xmpp_tls,
            XmppTls::kOff);
  EXPECT_NE(error_of("[xmpp]\njid = acs@example.net\n"), "");  // no password
  EXPECT_NE(error_of("[xmpp]\njid = example.net\npassword = p\n"), "");
  EXPECT_NE(error_of("[xmpp]\ntls = maybe\n"), "");
  EXPECT_NE(error_of("[xmpp]\nserver = host:99999\n"), "");
  EXPECT_NE(error_of("[xmpp]\ntimeout = 0\n"), "");
}

TEST(Config, XmppPasswordNeverInAnError) {
  // An error about the [xmpp] lines names the key, never the password.
  const std::string msg = error_of("[xmpp]\njid = bad jid\npassword = hunter2\n");
  EXPECT_NE(msg.find("jid"), std::string::npos);
  EXPECT_EQ(msg.find("hunter2"), std::string::npos);
}

TEST(Config, Stun) {
  const Config c = parse(
      "[stun]\nlisten = 0.0.0.0:3478, [::]:3478\nretries = 5\nretry_interval = 250ms\n"
      "replay_window = 30s\n",
      "s.ini");
  ASSERT_EQ(c.stun_listen.size(), 2u);
  EXPECT_EQ(c.stun_listen[0], (ListenAddress{"0.0.0.0", 3478, false}));
  EXPECT_EQ(c.stun_listen[1], (ListenAddress{"::", 3478, false}));
  EXPECT_EQ(c.stun_retries, 5u);
  EXPECT_EQ(c.stun_retry_interval, milliseconds{250});
  EXPECT_EQ(c.stun_replay_window, seconds{30});
  EXPECT_EQ(error_of("[stun]\nlisten = https://0.0.0.0:3478\n"),
            "t.ini:2: bad value 'https://0.0.0.0:3478' for 'listen' in [stun]: STUN is UDP: no "
            "https:// prefix");
  EXPECT_NE(error_of("[stun]\nretries = 0\n"), "");
  EXPECT_NE(error_of("[stun]\nlisten = stun.example.net:3478\n"), "");
  EXPECT_NE(error_of("[stun]\nretry_interval = 1ms\n"), "");
}

TEST(Config, ConnectionRequestRules) {
  const Config c = parse(
      "[connection_request]\nallow = 10.0.0.0/8\ndeny =\nports = 7547, 30000-30010\n"
      "timeout = 500ms\n",
      "cr.ini");
  EXPECT_EQ(c.cr_allow, (std::vector<std::string>{"10.0.0.0/8"}));
  EXPECT_TRUE(c.cr_deny.empty());
  EXPECT_EQ(c.cr_ports, (std::vector<std::pair<uint16_t, uint16_t>>{{7547, 7547}, {30000, 30010}}));
  EXPECT_EQ(c.cr_timeout, std::chrono::milliseconds{500});
  EXPECT_THROW(parse("[connection_request]\nports = 0\n", "cr.ini"), ConfigError);
  EXPECT_THROW(parse("[connection_request]\nports = 9-8\n", "cr.ini"), ConfigError);
  EXPECT_THROW(parse("[connection_request]\ndeny = localhost\n", "cr.ini"), ConfigError);
  try {
    parse("[connection_request]\npassword = s3cret\ntimeout = x\n", "cr.ini");
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos);
  }
}

TEST(Config, MetricsAllowTakesCidrsOnly) {
  EXPECT_EQ(parse("[metrics]\nallow = 10.0.0.0/8, ::1/128, 192.0.2.7\n", "m.ini").metrics_allow,
            (std::vector<std::string>{"10.0.0.0/8", "::1/128", "192.0.2.7"}));
  EXPECT_THROW(parse("[metrics]\nallow = 10.0.0.0/33\n", "m.ini"), ConfigError);
  EXPECT_THROW(parse("[metrics]\nallow = example.net\n", "m.ini"), ConfigError);
  EXPECT_THROW(parse("[nbi]\nlisten = https://0.0.0.0:7557\n", "m.ini"), ConfigError);
}

// The shipped file's commented-out examples are valid too: uncomment them.
TEST(Config, ShippedExampleCommentedKeysAreValid) {
  std::string text;
  {
    FILE* f = std::fopen((std::string(LUACS_SOURCE_DIR) + "/etc/luacs.ini").c_str(), "rb");
    ASSERT_NE(f, nullptr);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    // ";key = value" (no blank after ';') is a commented-out setting.
    if (line.size() > 1 && line[0] == ';' && line[1] != ' ') line = line.substr(1);
    out += line + "\n";
    pos = nl + 1;
  }
  const Config c = parse(out, "uncommented.ini");
  EXPECT_EQ(c.tls_cert,
            (std::vector<std::string>{"/etc/luacs/cwmp-ecdsa.crt", "/etc/luacs/cwmp-rsa.crt"}));
  EXPECT_EQ(c.tls_key.size(), 2u);
  EXPECT_EQ(c.tls_client_ca, "/etc/luacs/cpe-ca.crt");
  ASSERT_EQ(c.credentials.size(), 2u);
  EXPECT_EQ(c.credentials[0].username, "cpe");
  EXPECT_EQ(c.credentials[0].device_id, "");
  EXPECT_EQ(c.credentials[1].device_id, "00E04C-W5%2D2100G-D8365F659C6E");
}

TEST(Config, EmptyTextGivesDefaults) {
  const Config c = parse("", "empty.ini");
  EXPECT_EQ(c.path, "empty.ini");
  ASSERT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(c.listen[0], (ListenAddress{"0.0.0.0", 7547, false}));
  EXPECT_EQ(c.max_body_bytes, 16u << 20);
  EXPECT_EQ(c.auth_mode, AuthMode::kNone);
}

TEST(Config, EveryKey) {
  const Config c = parse(R"(# a comment
[cwmp]
listen = 127.0.0.1:7547, [::]:7548, https://[2001:db8::1]:7549
workers = 8
listen_backlog = 1024
cookie_name = CWMPSID
tls_cert = /etc/c.pem, /etc/r.pem
tls_key = /etc/k.pem,/etc/rk.pem
tls_min_version = 1.0
tls_ciphers = ECDHE+AESGCM
tls_ciphersuites = TLS_AES_128_GCM_SHA256
tls_session_cache = 0
tls_session_tickets = off
tls_ticket_key_rotation = 1h
tls_handshake_timeout = 3s
tls_client_ca = /etc/ca.pem
tls_client_auth = optional
tls_crl = /etc/crl.pem

[limits]
max_body_bytes = 1G
max_header_bytes = 8K
xml_max_depth = 64
rpcs_per_session = 1000
session_timeout = 10m
idle_timeout = 45s
header_timeout = 2500ms
body_timeout = 20
keepalive_timeout = 1h
max_sessions = 5000
max_connections = 6000
max_queue_delay = 0
retry_after_s = 120

[auth]
mode = digest
realm = ACS Realm
allow_basic = yes
nonce_lifetime = 2m
username = cpe
password = p:w=d ;not part of it

[auth.devices]
00E04C-W5%2D2100G-D8365F659C6E = dev1:se:cr=et
E48D8C-hAP%20lite-ABC = dev2:x

[log]
level = debug
file = /var/log/luacs.log
)",
                         "all.ini");
  ASSERT_EQ(c.listen.size(), 3u);
  EXPECT_EQ(c.listen[0], (ListenAddress{"127.0.0.1", 7547, false}));
  EXPECT_EQ(c.listen[1], (ListenAddress{"::", 7548, false}));
  EXPECT_EQ(c.listen[2], (ListenAddress{"2001:db8::1", 7549, true}));
  EXPECT_EQ(c.workers, 8u);
  EXPECT_EQ(c.listen_backlog, 1024u);
  EXPECT_EQ(c.cookie_name, "CWMPSID");
  EXPECT_EQ(c.tls_cert, (std::vector<std::string>{"/etc/c.pem", "/etc/r.pem"}));
  EXPECT_EQ(c.tls_key, (std::vector<std::string>{"/etc/k.pem", "/etc/rk.pem"}));
  EXPECT_EQ(c.tls_min_version, "1.0");
  EXPECT_EQ(c.tls_ciphers, "ECDHE+AESGCM");
  EXPECT_EQ(c.tls_ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(c.tls_session_cache, 0u);
  EXPECT_FALSE(c.tls_session_tickets);
  EXPECT_EQ(c.tls_ticket_key_rotation, milliseconds(3'600'000));
  EXPECT_EQ(c.tls_handshake_timeout, milliseconds(3'000));
  EXPECT_EQ(c.tls_client_ca, "/etc/ca.pem");
  EXPECT_EQ(c.tls_client_auth, "optional");
  EXPECT_EQ(c.tls_crl, "/etc/crl.pem");
  EXPECT_EQ(c.max_body_bytes, uint64_t{1} << 30);
  EXPECT_EQ(c.max_header_bytes, 8192u);
  EXPECT_EQ(c.xml_max_depth, 64u);
  EXPECT_EQ(c.rpcs_per_session, 1000u);
  EXPECT_EQ(c.session_timeout, milliseconds(600'000));
  EXPECT_EQ(c.idle_timeout, milliseconds(45'000));
  EXPECT_EQ(c.header_timeout, milliseconds(2'500));
  EXPECT_EQ(c.body_timeout, milliseconds(20'000));
  EXPECT_EQ(c.keepalive_timeout, milliseconds(3'600'000));
  EXPECT_EQ(c.max_sessions, 5000u);
  EXPECT_EQ(c.max_connections, 6000u);
  EXPECT_EQ(c.max_queue_delay, milliseconds(0));
  EXPECT_EQ(c.retry_after_s, 120u);
  EXPECT_EQ(c.auth_mode, AuthMode::kDigest);
  EXPECT_EQ(c.realm, "ACS Realm");
  EXPECT_EQ(c.allow_basic, BasicAuth::kAlways);
  EXPECT_EQ(c.nonce_lifetime, seconds(120));
  ASSERT_EQ(c.credentials.size(), 3u);
  EXPECT_EQ(c.credentials[0].username, "cpe");
  EXPECT_EQ(c.credentials[0].password, "p:w=d");
  EXPECT_EQ(c.credentials[0].device_id, "");
  EXPECT_EQ(c.credentials[1].username, "dev1");
  EXPECT_EQ(c.credentials[1].password, "se:cr=et");
  EXPECT_EQ(c.credentials[1].device_id, "00E04C-W5%2D2100G-D8365F659C6E");
  EXPECT_EQ(c.credentials[2].username, "dev2");
  EXPECT_EQ(c.credentials[2].device_id, "E48D8C-hAP%20lite-ABC");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_file, "/var/log/luacs.log");
}

TEST(Config, Sizes) {
  auto body = [](const std::string& v) {
    return parse("[limits]\nmax_body_bytes = " + v + "\n", "t.ini").max_body_bytes;
  };
  EXPECT_EQ(body("2048"), 2048u);
  EXPECT_EQ(body("16K"), 16u << 10);
  EXPECT_EQ(body("16k"), 16u << 10);
  EXPECT_EQ(body("16M"), 16u << 20);
  EXPECT_EQ(body("2g"), uint64_t{2} << 30);
  EXPECT_EQ(error_of("[limits]\nmax_body_bytes = 16X\n"),
            "t.ini:2: bad value '16X' for 'max_body_bytes' in [limits]: not a size (a number "
            "with an optional K, M or G suffix)");
  EXPECT_NE(error_of("[limits]\nmax_body_bytes = M\n").find("not a size"), std::string::npos);
  EXPECT_NE(error_of("[limits]\nmax_body_bytes = -1\n").find("not a size"), std::string::npos);
  EXPECT_NE(error_of("[limits]\nmax_body_bytes = 16 M\n").find("not a size"), std::string::npos);
  EXPECT_EQ(error_of("[limits]\nmax_body_bytes = 100\n"),
            "t.ini:2: bad value '100' for 'max_body_bytes' in [limits]: out of range (1K..16G)");
  EXPECT_NE(error_of("[limits]\nmax_body_bytes = 99999999999999999999G\n").find("not a size"),
            std::string::npos);
  EXPECT_NE(error_of("[limits]\nmax_body_bytes = 9999999999G\n").find("out of range"),
            std::string::npos);
  EXPECT_NE(error_of("[limits]\nmax_header_bytes = 32M\n").find("out of range (1K..16M)"),
            std::string::npos);
}

TEST(Config, Durations) {
  auto idle = [](const std::string& v) {
    return parse("[limits]\nidle_timeout = " + v + "\n", "t.ini").idle_timeout;
  };
  EXPECT_EQ(idle("30"), milliseconds(30'000));
  EXPECT_EQ(idle("30s"), milliseconds(30'000));
  EXPECT_EQ(idle("500ms"), milliseconds(500));
  EXPECT_EQ(idle("5m"), milliseconds(300'000));
  EXPECT_EQ(idle("2h"), milliseconds(7'200'000));
  EXPECT_EQ(error_of("[limits]\nidle_timeout = 0\n"),
            "t.ini:2: bad value '0' for 'idle_timeout' in [limits]: must be greater than 0");
  EXPECT_NE(error_of("[limits]\nidle_timeout = 0ms\n").find("greater than 0"), std::string::npos);
  EXPECT_EQ(idle("1d"), milliseconds(86'400'000));
  EXPECT_EQ(error_of("[limits]\nidle_timeout = 1w\n"),
            "t.ini:2: bad value '1w' for 'idle_timeout' in [limits]: not a duration (a number of "
            "seconds, or with a unit: 500ms, 30s, 5m, 1h, 7d)");
  EXPECT_NE(error_of("[limits]\nidle_timeout = -5\n").find("not a duration"), std::string::npos);
  EXPECT_NE(error_of("[limits]\nidle_timeout =\n").find("not a duration"), std::string::npos);
  EXPECT_NE(error_of("[limits]\nidle_timeout = 25h\n").find("out of range (1ms..1d)"),
            std::string::npos);
  EXPECT_NE(error_of("[limits]\nsession_timeout = 99999999999999999h\n").find("out of range"),
            std::string::npos);
  // The nonce lifetime is whole seconds.
  EXPECT_EQ(parse("[auth]\nnonce_lifetime = 90\n", "t.ini").nonce_lifetime, seconds(90));
  EXPECT_EQ(parse("[auth]\nnonce_lifetime = 2000ms\n", "t.ini").nonce_lifetime, seconds(2));
  EXPECT_NE(error_of("[auth]\nnonce_lifetime = 1500ms\n").find("whole number of seconds"),
            std::string::npos);
  EXPECT_NE(error_of("[auth]\nnonce_lifetime = 500ms\n").find("out of range (1s..1d)"),
            std::string::npos);
}

TEST(Config, Booleans) {
  const auto tickets = [](const char* v) {
    return parse(std::string("[cwmp]\ntls_session_tickets = ") + v + "\n", "t.ini")
        .tls_session_tickets;
  };
  for (const char* t : {"true", "TRUE", "yes", "Yes", "on", "1"}) EXPECT_TRUE(tickets(t)) << t;
  for (const char* f : {"false", "False", "no", "off", "OFF", "0"}) EXPECT_FALSE(tickets(f)) << f;
  EXPECT_EQ(error_of("[cwmp]\ntls_session_tickets = maybe\n"),
            "t.ini:2: bad value 'maybe' for 'tls_session_tickets' in [cwmp]: not a boolean "
            "(true/false, yes/no, on/off, 1/0)");
}

TEST(Config, BasicAuthIsOffInsideTlsOrEverywhere) {
  const auto basic = [](const char* v) {
    return parse(std::string("[auth]\nallow_basic = ") + v + "\n", "t.ini").allow_basic;
  };
  EXPECT_EQ(parse("", "t.ini").allow_basic, BasicAuth::kOff);
  EXPECT_EQ(basic("no"), BasicAuth::kOff);
  EXPECT_EQ(basic("tls"), BasicAuth::kTls);
  EXPECT_EQ(basic("yes"), BasicAuth::kAlways);
  EXPECT_EQ(error_of("[auth]\nallow_basic = maybe\n"),
            "t.ini:2: bad value 'maybe' for 'allow_basic' in [auth]: expected false, tls (inside "
            "TLS only) or true (also on plain HTTP)");
}

TEST(Config, ClientCertificateBinding) {
  const Config d = parse("", "t.ini");
  EXPECT_EQ(d.tls_cert_binding, CertBinding::kSerial);
  EXPECT_EQ(d.tls_cert_binding_in, CertBindingField::kAny);
  EXPECT_FALSE(d.certificate_alone);
  const Config c = parse(
      "[cwmp]\ntls_client_ca = /ca.pem\ntls_cert_binding = device_id\ntls_cert_binding_in = "
      "san\n[auth]\ncertificate_alone = yes\n",
      "t.ini");
  EXPECT_EQ(c.tls_cert_binding, CertBinding::kDeviceId);
  EXPECT_EQ(c.tls_cert_binding_in, CertBindingField::kSan);
  EXPECT_TRUE(c.certificate_alone);
  EXPECT_EQ(error_of("[cwmp]\ntls_cert_binding = mac\n"),
            "t.ini:2: bad value 'mac' for 'tls_cert_binding' in [cwmp]: expected none, serial or "
            "device_id");
  EXPECT_EQ(error_of("[cwmp]\ntls_cert_binding_in = issuer\n"),
            "t.ini:2: bad value 'issuer' for 'tls_cert_binding_in' in [cwmp]: expected cn, san or "
            "any");
  // A certificate alone, bound to nothing, would log in as any device.
  EXPECT_EQ(error_of("[cwmp]\ntls_client_ca = /ca.pem\ntls_cert_binding = none\n[auth]\n"
                     "certificate_alone = true\n"),
            "t.ini:5: certificate_alone needs [cwmp] tls_client_ca and a tls_cert_binding other "
            "than none");
  EXPECT_EQ(error_of("[auth]\ncertificate_alone = true\n"),
            "t.ini:2: certificate_alone needs [cwmp] tls_client_ca and a tls_cert_binding other "
            "than none");
}

TEST(Config, Numbers) {
  EXPECT_EQ(parse("[cwmp]\nworkers = 256\n", "t.ini").workers, 256u);
  EXPECT_EQ(error_of("[cwmp]\nworkers = 257\n"),
            "t.ini:2: bad value '257' for 'workers' in [cwmp]: out of range (0..256)");
  EXPECT_EQ(error_of("[cwmp]\nworkers = four\n"),
            "t.ini:2: bad value 'four' for 'workers' in [cwmp]: not a number");
  EXPECT_EQ(error_of("[cwmp]\nworkers = -1\n"),
            "t.ini:2: bad value '-1' for 'workers' in [cwmp]: not a number");
  EXPECT_EQ(error_of("[cwmp]\nworkers = 4 # four\n"),
            "t.ini:2: bad value '4 # four' for 'workers' in [cwmp]: not a number");
  EXPECT_EQ(parse("[cwmp]\nworkers = 4 ; four\n", "t.ini").workers, 4u);
  EXPECT_NE(error_of("[cwmp]\nworkers = 99999999999999999999999\n").find("out of range"),
            std::string::npos);
  EXPECT_NE(error_of("[limits]\nretry_after_s = 0\n").find("out of range (1..86400)"),
            std::string::npos);
  EXPECT_NE(error_of("[limits]\nxml_max_depth = 4\n").find("out of range (8..1024)"),
            std::string::npos);
}

TEST(Config, Enums) {
  EXPECT_EQ(parse("[auth]\nmode = none\n", "t.ini").auth_mode, AuthMode::kNone);
  EXPECT_EQ(error_of("[auth]\nmode = kerberos\n"),
            "t.ini:2: bad value 'kerberos' for 'mode' in [auth]: expected none or digest");
  EXPECT_EQ(error_of("[auth]\nmode = Digest\n"),
            "t.ini:2: bad value 'Digest' for 'mode' in [auth]: expected none or digest");
  for (const char* l : {"debug", "info", "warn", "error"})
    EXPECT_EQ(parse(std::string("[log]\nlevel = ") + l + "\n", "t.ini").log_level, l);
  EXPECT_EQ(error_of("[log]\nlevel = verbose\n"),
            "t.ini:2: bad value 'verbose' for 'level' in [log]: expected debug, info, warn or "
            "error");
}

TEST(Config, Strings) {
  EXPECT_NE(error_of("[cwmp]\ncookie_name = a b\n").find("not a cookie name"), std::string::npos);
  EXPECT_NE(error_of("[cwmp]\ncookie_name = a=b\n").find("not a cookie name"), std::string::npos);
  EXPECT_NE(error_of("[auth]\nrealm = say \"hi\"\n").find("not a realm"), std::string::npos);
  EXPECT_NE(error_of("[auth]\nrealm =\n").find("not a realm"), std::string::npos);
}

TEST(Config, ListenForms) {
  auto listen = [](const std::string& v) {
    return parse("[cwmp]\nlisten = " + v + "\ntls_cert = c\ntls_key = k\n", "t.ini").listen;
  };
  EXPECT_EQ(listen("0.0.0.0:7547"), (std::vector<ListenAddress>{{"0.0.0.0", 7547, false}}));
  EXPECT_EQ(listen("[::]:7547"), (std::vector<ListenAddress>{{"::", 7547, false}}));
  EXPECT_EQ(listen("127.0.0.1:1"), (std::vector<ListenAddress>{{"127.0.0.1", 1, false}}));
  EXPECT_EQ(listen("127.0.0.1:0"), (std::vector<ListenAddress>{{"127.0.0.1", 0, false}}));
  EXPECT_EQ(listen("[::1]:65535"), (std::vector<ListenAddress>{{"::1", 65535, false}}));
  EXPECT_EQ(listen("http://10.0.0.1:80,https://0.0.0.0:7548"),
            (std::vector<ListenAddress>{{"10.0.0.1", 80, false}, {"0.0.0.0", 7548, true}}));
}

TEST(Config, ListenErrors) {
  auto err = [](const std::string& v) { return error_of("[cwmp]\nlisten = " + v + "\n"); };
  EXPECT_EQ(err("localhost:7547"),
            "t.ini:2: bad value 'localhost:7547' for 'listen' in [cwmp]: bad address "
            "'localhost:7547' (expected IPv4:port or [IPv6]:port, optionally prefixed by http:// "
            "or https://)");
  EXPECT_NE(err("0.0.0.0").find("bad address '0.0.0.0'"), std::string::npos);
  EXPECT_NE(err("::1:7547").find("bad address"), std::string::npos);
  EXPECT_NE(err("[::1]7547").find("bad address"), std::string::npos);
  EXPECT_NE(err("[::1:7547").find("bad address"), std::string::npos);
  EXPECT_NE(err("[1.2.3.4]:7547").find("bad address"), std::string::npos);
  EXPECT_NE(err("300.0.0.1:7547").find("bad address"), std::string::npos);
  EXPECT_NE(err("[fe80::1%eth0]:7547").find("bad address"), std::string::npos);  // no scope ids
  EXPECT_EQ(err("0.0.0.0:70000"),
            "t.ini:2: bad value '0.0.0.0:70000' for 'listen' in [cwmp]: bad port in "
            "'0.0.0.0:70000' (0..65535)");
  EXPECT_NE(err("0.0.0.0:65536").find("bad port"), std::string::npos);
  EXPECT_NE(err("0.0.0.0:http").find("bad port"), std::string::npos);
  EXPECT_NE(err("0.0.0.0:7547,").find("empty entry"), std::string::npos);
  EXPECT_NE(err("0.0.0.0:7547, 0.0.0.0:7547").find("'0.0.0.0:7547' is listed twice"),
            std::string::npos);
  EXPECT_EQ(error_of("[cwmp]\n\nlisten = https://0.0.0.0:7548\ntls_cert = c\n"),
            "t.ini:3: an https:// listener needs tls_cert and tls_key in [cwmp]");
}

TEST(Config, StructuralErrorsNameTheLine) {
  EXPECT_EQ(error_of("[cwmp]\nworkers = 2\nwokers = 4\n"),
            "t.ini:3: unknown key 'wokers' in [cwmp]");
  EXPECT_EQ(error_of("[cwmp]\n[foo]\n"), "t.ini:2: unknown section [foo]");
  EXPECT_EQ(error_of("[cwmp]\n\n[foo]\nbar = 1\n"), "t.ini:3: unknown section [foo]");
  EXPECT_EQ(error_of("[CWMP]\nworkers = 1\n"), "t.ini:1: unknown section [CWMP]");
  EXPECT_EQ(error_of("workers = 1\n"), "t.ini:1: key 'workers' outside of any section");
  EXPECT_EQ(error_of("[cwmp]\nworkers = 2\n; c\n\nworkers = 3\n"),
            "t.ini:5: duplicated key 'workers' in [cwmp] (first set on line 2)");
  // Same key in a repeated section is still a duplicate.
  EXPECT_EQ(error_of("[log]\nlevel = info\n[cwmp]\n[log]\nlevel = warn\n"),
            "t.ini:5: duplicated key 'level' in [log] (first set on line 2)");
  EXPECT_EQ(error_of("[cwmp]\nworkers 2\n"),
            "t.ini:2: syntax error (expected 'key = value', '[section]' or a comment)");
  EXPECT_EQ(error_of("[cwmp\nworkers = 2\n"),
            "t.ini:1: syntax error (expected 'key = value', '[section]' or a comment)");
  // An indented line is not a continuation of the previous value.
  EXPECT_EQ(error_of("[cwmp]\ncookie_name = a\n  b\n"),
            "t.ini:3: syntax error (expected 'key = value', '[section]' or a comment)");
  // The first error in the file wins, whatever its kind.
  EXPECT_EQ(error_of("[cwmp]\nbad line\nworkers = x\n"),
            "t.ini:2: syntax error (expected 'key = value', '[section]' or a comment)");
  EXPECT_EQ(error_of("[cwmp]\nworkers = x\nbad line\n"),
            "t.ini:2: bad value 'x' for 'workers' in [cwmp]: not a number");
  EXPECT_EQ(error_of("[nope]\n[cwmp]\nbad line\n"), "t.ini:1: unknown section [nope]");
}

TEST(Config, LineNumbersSurviveLongLinesCrlfAndBom) {
  EXPECT_EQ(error_of("\xEF\xBB\xBF[cwmp]\r\nworkers = 1\r\nwokers = 2\r\n"),
            "t.ini:3: unknown key 'wokers' in [cwmp]");
  const std::string long_value(300, 'a');
  EXPECT_EQ(error_of("[log]\nfile = " + long_value + "\n[cwmp]\nwokers = 1\n"),
            "t.ini:2: line too long (more than 198 characters)");
  // A long comment line is harmless only if it fits; it does not shift lines.
  EXPECT_EQ(error_of("; " + std::string(150, 'c') + "\n[cwmp]\nwokers = 1\n"),
            "t.ini:3: unknown key 'wokers' in [cwmp]");
  EXPECT_EQ(error_of(std::string("[cwmp]\nworkers = 1\0\n", 21)), "t.ini:2: NUL byte in line");
  // No newline at the end of the file.
  EXPECT_EQ(error_of("[cwmp]\nwokers = 1"), "t.ini:2: unknown key 'wokers' in [cwmp]");
}

TEST(Config, MissingFile) {
  try {
    load("/nonexistent/luacs.ini");
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/luacs.ini: cannot open: No such file or directory");
  }
}

TEST(Config, Credentials) {
  EXPECT_EQ(error_of("[auth]\nmode = digest\n"),
            "t.ini:2: mode = digest needs credentials: set username and password in [auth], or "
            "add [auth.devices] entries");
  const Config only_devices = parse("[auth]\nmode = digest\n[auth.devices]\nA-B = u:p\n", "t.ini");
  ASSERT_EQ(only_devices.credentials.size(), 1u);
  EXPECT_EQ(only_devices.credentials[0].device_id, "A-B");
  EXPECT_EQ(error_of("[auth]\nusername = cpe\n"),
            "t.ini:2: [auth] username is set without a password");
  EXPECT_EQ(error_of("[auth]\n\npassword = hunter2\n"),
            "t.ini:3: [auth] password is set without a username");
  EXPECT_EQ(error_of("[auth]\nusername = a:b\npassword = x\n"),
            "t.ini:2: bad value 'a:b' for 'username' in [auth]: must not contain ':'");
  EXPECT_EQ(error_of("[auth.devices]\nA-B = u:p\nA-B = u:q\n"),
            "t.ini:3: duplicated key 'A-B' in [auth.devices] (first set on line 2)");
  EXPECT_EQ(error_of("[auth.devices]\nA B = u:p\n").substr(0, 24), "t.ini:2: bad device id '");
}

TEST(Config, PasswordsAreNeverEchoed) {
  const std::string e1 = error_of("[auth]\nusername = u\npassword =\n");
  EXPECT_EQ(e1, "t.ini:3: bad value for 'password' in [auth]: must not be empty");
  const std::string e2 = error_of("[auth.devices]\nA-B = hunter2\n");
  EXPECT_EQ(e2,
            "t.ini:2: bad entry for device 'A-B' in [auth.devices]: expected "
            "<username>:<password>");
  const std::string e3 = error_of("[auth.devices]\nA-B = user:\n");
  EXPECT_EQ(e3,
            "t.ini:2: bad entry for device 'A-B' in [auth.devices]: expected "
            "<username>:<password>");
  // Errors elsewhere in a file with passwords don't carry them either.
  const std::string e4 = error_of("[auth]\nusername = u\npassword = hunter2\nmode = bogus\n");
  EXPECT_EQ(e4.find("hunter2"), std::string::npos) << e4;
  const std::string e5 = error_of("[auth]\nusername = u\npassword = hunter2\npassword = hunter3\n");
  EXPECT_EQ(e5, "t.ini:4: duplicated key 'password' in [auth] (first set on line 3)");
}

TEST(Config, TlsErrors) {
  EXPECT_EQ(error_of("[cwmp]\ntls_cert = a, b\ntls_key = k\n"),
            "t.ini:3: 2 tls_cert files but 1 tls_key files (they pair up in order)");
  EXPECT_NE(error_of("[cwmp]\ntls_min_version = 1.4\n").find("expected 1.0, 1.1, 1.2 or 1.3"),
            std::string::npos);
  EXPECT_NE(error_of("[cwmp]\ntls_client_auth = maybe\n").find("none, optional or required"),
            std::string::npos);
  EXPECT_EQ(error_of("[cwmp]\ntls_client_auth = required\n"),
            "t.ini:2: tls_client_auth = required needs tls_client_ca (a PEM file of CAs)");
  EXPECT_NE(error_of("[cwmp]\ntls_cert = ,\n").find("file paths"), std::string::npos);
  EXPECT_NE(error_of("[cwmp]\ntls_ticket_key_rotation = 1s\n").find("out of range"),
            std::string::npos);
}

}  // namespace
}  // namespace luacs::config
