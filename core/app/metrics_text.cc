#include "core/app/metrics_text.h"

#include "core/connreq/stun_server.h"
#include "core/metrics/metrics.h"
#include "core/server/server.h"
#include "core/store/store.h"
#include "core/util/heap.h"
#include "core/util/log.h"
#include "lua/policy.h"

namespace luacs::app {

namespace {

// The STUN server's counters (TR-111): what it answered, learned and sent,
// and every datagram it dropped, by reason.
void stun_metrics(const connreq::StunServer& stun, std::vector<prometheus::MetricFamily>& f) {
  namespace m = luacs::metrics;
  auto d = [](uint64_t v) { return m::one(static_cast<double>(v)); };
  f.push_back(m::counter("luacs_stun_binding_responses_total", "STUN Binding responses sent.",
                         d(stun.answered())));
  f.push_back(m::gauge("luacs_stun_bindings", "Devices whose public UDP binding is known.",
                       d(stun.binding_count())));
  f.push_back(m::counter("luacs_stun_connection_request_datagrams_total",
                         "UDP connection-request datagrams sent (retransmissions included).",
                         d(stun.datagrams_sent())));
  m::Samples drops;
  for (const auto& [reason, count] : stun.drops())
    drops.push_back({{{"reason", reason}}, static_cast<double>(count)});
  f.push_back(m::counter("luacs_stun_dropped_total",
                         "STUN datagrams dropped or refused, by reason.", std::move(drops)));
}

}  // namespace

std::string metrics_text(const server::Server& server, const store::Store* store,
                         lua::PolicyManager& policies, const connreq::StunServer* stun) {
  namespace m = luacs::metrics;
  auto n = [](const auto& atomic) { return static_cast<double>(atomic.load()); };
  const auto& st = server.stats();
  std::vector<prometheus::MetricFamily> f = {
      m::gauge("luacs_sessions_in_flight", "CWMP sessions live now.", m::one(n(st.sessions_live))),
      m::gauge("luacs_connections_open", "CWMP connections open now.",
               m::one(n(st.connections_open))),
      m::counter("luacs_connections_accepted_total", "CWMP connections accepted.",
                 m::one(n(st.connections_accepted))),
      m::counter("luacs_cwmp_requests_total", "CWMP HTTP requests.", m::one(n(st.requests))),
      m::counter("luacs_cwmp_auth_failures_total", "CWMP requests with wrong credentials.",
                 m::one(n(st.auth_failures))),
      m::counter("luacs_cwmp_bad_requests_total", "CWMP requests answered 4xx (not auth).",
                 m::one(n(st.bad_requests))),
      m::counter("luacs_cwmp_foreign_cookies_total",
                 "Requests refused (403) for showing another connection's session cookie.",
                 m::one(n(st.foreign_cookies))),
      m::counter("luacs_cwmp_sessions_over_bytes_total",
                 "Sessions ended (413) past [limits] max_session_bytes.",
                 m::one(n(st.sessions_over_bytes))),
      m::counter("luacs_cwmp_abandoned_sessions_ended_total",
                 "Sessions without a connection ended past [limits] max_abandoned_bytes.",
                 m::one(n(st.abandoned_ended))),
      m::gauge("luacs_cwmp_abandoned_session_bytes",
               "Body bytes held by sessions whose connection has gone.",
               m::one(n(st.abandoned_bytes))),
      m::counter("luacs_cwmp_reads_paused_total",
                 "Times a connection was not read while its unread replies passed "
                 "[limits] reply_high_water.",
                 m::one(n(st.reads_paused))),
      m::counter("luacs_log_warnings_suppressed_total",
                 "Warnings not written: past [log] warnings_per_source for their source.",
                 m::one(static_cast<double>(luacs::log::warnings_suppressed()))),
      m::counter("luacs_cwmp_handovers_total",
                 "CWMP connections moved to the worker that has their session.",
                 m::one(n(st.handovers))),
      m::counter("luacs_tls_handshakes_total",
                 "TLS handshakes at the https:// listeners, by result.",
                 {{{{"result", "ok"}}, n(st.tls_handshakes_ok)},
                  {{{"result", "failed"}}, n(st.tls_handshakes_failed)},
                  {{{"result", "timeout"}}, n(st.tls_handshake_timeouts)}}),
      m::counter("luacs_tls_resumed_total", "TLS handshakes that resumed a session.",
                 m::one(n(st.tls_resumed))),
      m::counter("luacs_tls_client_refused_total",
                 "CWMP requests refused (403) for their client certificate, by reason.",
                 {{{{"reason", "missing"}}, n(st.tls_client_missing)},
                  {{{"reason", "invalid"}}, n(st.tls_client_invalid)},
                  {{{"reason", "wrong_device"}}, n(st.tls_client_wrong_device)},
                  {{{"reason", "policy"}}, n(st.tls_client_policy)}}),
  };
  const auto ps = policies.status();
  f.push_back(m::gauge("luacs_policy_generation", "The policy generation new sessions run.",
                       m::one(static_cast<double>(ps.generation))));
  f.push_back(m::counter("luacs_policy_reloads_total", "Policy loads, by result.",
                         {{{{"result", "ok"}}, static_cast<double>(ps.reloads)},
                          {{{"result", "failed"}}, static_cast<double>(ps.reload_failures)}}));
  f.push_back(m::counter("luacs_policy_hook_calls_total", "Policy hook calls.",
                         m::one(n(policies.hook_calls))));
  f.push_back(m::counter("luacs_policy_hook_errors_total", "Policy hook calls that failed.",
                         m::one(n(policies.hook_errors))));
  f.push_back(m::counter("luacs_policy_hook_seconds_total", "Time spent in policy hooks.",
                         m::one(n(policies.hook_time_ns) / 1e9)));
  m::Samples lua;
  for (unsigned w = 0; w < server.workers() && w < lua::PolicyManager::kMaxWorkers; ++w)
    lua.push_back({{{"worker", std::to_string(w)}}, n(policies.lua_bytes[w])});
  f.push_back(m::gauge("luacs_lua_memory_bytes", "Bytes held by each worker's Lua states.",
                       std::move(lua)));
  const auto heap = util::heap_stats();
  f.push_back(m::gauge("luacs_heap_bytes",
                       "The C heap: bytes in use, and bytes freed that the allocator keeps.",
                       {{{{"state", "in_use"}}, static_cast<double>(heap.in_use)},
                        {{{"state", "free"}}, static_cast<double>(heap.free_held)}}));
  if (store) {
    const auto ss = store->stats();
    auto d = [](uint64_t v) { return m::one(static_cast<double>(v)); };
    f.push_back(m::gauge("luacs_store_up", "Whether PostgreSQL is reachable.", d(ss.available)));
    f.push_back(m::gauge("luacs_store_backlog", "Writes queued and not yet committed.",
                         d(store->backlog())));
    f.push_back(m::counter("luacs_store_rows_written_total", "Session results committed.",
                           d(ss.rows_written)));
    f.push_back(m::counter("luacs_store_batches_total", "Batches committed.", d(ss.batches)));
    f.push_back(m::counter("luacs_store_dropped_total",
                           "Session results dropped: the queue was full.", d(ss.dropped)));
    f.push_back(
        m::counter("luacs_store_rejected_total", "Writes PostgreSQL refused.", d(ss.rejected)));
    f.push_back(m::counter("luacs_store_reconnects_total", "Reconnections to PostgreSQL.",
                           d(ss.reconnects)));
    f.push_back(m::counter("luacs_device_cache_hits_total", "Device cache hits on the Inform path.",
                           d(ss.cache_hits)));
    f.push_back(m::counter("luacs_device_cache_misses_total",
                           "Device cache misses (loaded from PostgreSQL).", d(ss.cache_misses)));
    f.push_back(m::counter("luacs_device_cache_evictions_total", "Devices evicted from the cache.",
                           d(ss.cache_evictions)));
    f.push_back(m::gauge("luacs_device_cache_devices", "Devices in the cache.", d(ss.cache_size)));
    f.push_back(m::gauge("luacs_device_cache_bytes", "Approximate bytes of the cached devices.",
                         d(ss.cache_bytes)));
  }
  if (stun) stun_metrics(*stun, f);
  return m::render(f);
}

}  // namespace luacs::app
