// One simulated session on a slot: connect, Inform, TransferComplete, the
// empty POST, answers to ACS requests, until the 204; the HTTP responses
// parsed from what the slot's connection read (tcp_flow.cc, tls_flow.cc)
// and the figures recorded on the way.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "bench/loadgen/cr_inform.h"
#include "bench/loadgen/runner_impl.h"
#include "core/soap/writer.h"

namespace luacs::loadgen {
namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr uint64_t kMaxBody = 64 << 20;

// An InformResponse element and no Fault: good enough to go on without a
// parse (anything else is parsed and checked).
bool looks_like_inform_response(std::string_view body) {
  size_t at = body.find("InformResponse");
  if (at == std::string_view::npos || at == 0) return false;
  char before = body[at - 1];
  if (before != ':' && before != '<') return false;
  return body.find("Fault") == std::string_view::npos;
}

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, p);
}

}  // namespace

const std::string& Runner::Impl::now_string() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != now_s) {
    now_s = ts.tv_sec;
    now_str = format_time(now_s);
  }
  return now_str;
}

std::string Runner::Impl::cnonce() {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void Runner::Impl::begin_session(Slot& s, int64_t t_start, size_t local, int entry) {
  if (!s.tail) ++stats.started;
  ++inflight;
  s.local = local;
  s.device = dev_first + local * dev_step;
  ++busy[s.local];
  s.woken = entry == kWokenEntry;
  if (opt.each_device_once && !s.woken) {
    dev_state[local] = DevState::kActive;
    if (!stats.first_start_us || t_start < stats.first_start_us) stats.first_start_us = t_start;
  }
  s.kit = &sh.fleet.kit(s.device);
  assign_serial(s.serial, s.kit->model, s.device);
  s.cpe.clear();
  s.cookie.clear();
  s.t_start = t_start;
  s.t_inform = 0;
  s.stale_retried = false;
  s.send_tc = false;
  s.reports_pending = false;
  s.body.clear();
  s.entry = entry;
  render_inform(s, entry);
  s.phase = Phase::kInform;
  s.inherited = s.open();
  send_request(s);
}

void Runner::Impl::render_inform(Slot& s, int entry) {
  auto it = pending.find(s.device);
  if (it != pending.end()) {
    // After a Reboot or a Download the ACS asked for: 1 BOOT + M Reboot,
    // 7 TRANSFER COMPLETE + M Download and a TransferComplete.
    std::vector<soap::EventStruct> events;
    if (it->second.reboot) {
      events.push_back({"1 BOOT", ""});
      events.push_back({"M Reboot", it->second.reboot_key});
    }
    if (it->second.download) {
      events.push_back({"7 TRANSFER COMPLETE", ""});
      events.push_back({"M Download", it->second.download_key});
      s.send_tc = true;
      s.tc_key = it->second.download_key;
    }
    if (s.woken) events.push_back({"6 CONNECTION REQUEST", ""});
    soap::Envelope env = make_inform(s.kit->model, s.serial, std::move(events), now_string());
    if (opt.cr.on())
      add_cr_parameters(std::get<soap::Inform>(env.body), s.kit->model, opt.cr, cr_values(s));
    soap::write(s.body, env);
    s.reports_pending = true;
    return;
  }
  if (s.woken) return s.kit->cr_informs.back().render(s.body, cr_values(s));
  size_t e = entry >= 0 ? static_cast<size_t>(entry) : mix(rng);
  s.entry = static_cast<int>(e);
  if (opt.cr.on())
    s.kit->cr_informs[e].render(s.body, cr_values(s));
  else
    s.kit->informs[e].render(s.body, s.serial, now_string());
  if (opt.events[e].transfer_complete) {
    s.send_tc = true;
    s.tc_key = kMixTransferKey;
  }
}

bool Runner::Impl::open_connection(Slot& s) {
  return sh.tls ? open_tls_connection(s) : open_tcp_connection(s);
}

void Runner::Impl::close_conn(Slot& s) {
  if (s.bev) {
    if (sh.tls) close_tls(s);
    bufferevent_free(s.bev);
    s.bev = nullptr;
  }
  if (s.fd >= 0) {
    event_del(s.io);
    close(s.fd);
    s.fd = -1;
  }
  ++s.conn_gen;
  s.in.clear();
  s.out.clear();  // what it did not send goes with it
  s.out_sent = 0;
  s.connected = false;
  s.awaiting = false;
  s.digest.reset();  // Digest state lives with the connection
}

void Runner::Impl::send_request(Slot& s) {
  if (!s.open()) {
    if (!open_connection(s)) return;
  } else if (s.fd >= 0) {
    event_add(s.io, io_timeout);  // the timeout runs from this request
  }
  const Target& t = opt.target;
  std::string& out = s.out;
  // Plain TCP: what the socket has not taken of the last request yet goes
  // first (a bufferevent queues it the same way).
  size_t queued = 0;
  if (s.fd >= 0 && s.out_sent < out.size()) {
    out.erase(0, s.out_sent);
    queued = out.size();
  } else {
    out.clear();
  }
  s.out_sent = 0;
  out += "POST ";
  out += t.path;
  out += " HTTP/1.1\r\nHost: ";
  out += t.host_header;
  out += "\r\nUser-Agent: luacs-loadgen\r\n";
  if (!s.body.empty()) out += "Content-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: \"\"\r\n";
  if (opt.echo_cookie && !s.cookie.empty()) {
    out += "Cookie: ";
    out += s.cookie;
    out += "\r\n";
  }
  s.sent_nc = 0;
  if (s.digest.active()) {
    out += "Authorization: ";
    out += s.digest.authorization("POST", t.path);
    out += "\r\n";
    s.sent_nc = s.digest.nonce_count();
  }
  out += "Content-Length: ";
  append_number(out, s.body.size());
  out += "\r\n\r\n";
  out += s.body;
  ++stats.requests;
  ++s.sends;
  stats.bytes_out += out.size() - queued;
  s.awaiting = true;
  s.resp_bytes = 0;
  if (s.phase == Phase::kInform && s.t_inform == 0) s.t_inform = monotonic_us();
  if (s.bev) {
    bufferevent_write(s.bev, out.data(), out.size());
  } else {
    // At once, even with the connect in progress: on loopback it is done
    // by now; if not, the write readiness sends the rest.
    flush_out(s);
  }
}

// --tls: the bufferevent's input into the slot's buffer.
void Runner::Impl::take_input(Slot& s) {
  evbuffer* in = bufferevent_get_input(s.bev);
  size_t len = evbuffer_get_length(in);
  if (len == 0) return;
  int n = evbuffer_remove(in, s.in.reserve(len), len);
  if (n > 0) s.in.commit(static_cast<size_t>(n));
}

void Runner::Impl::on_read(bufferevent*, void* arg) {
  Slot& s = *static_cast<Slot*>(arg);
  s.r->take_input(s);
  s.r->parse_responses(s);
}

void Runner::Impl::on_event(bufferevent*, short what, void* arg) {
  // Read first: what the failed connect or handshake left (TLS).
  const int socket_error = EVUTIL_SOCKET_ERROR();
  Slot& s = *static_cast<Slot*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    s.connected = true;
    if (s.r->sh.tls) s.r->tls_connected(s);
    return;
  }
  s.r->take_input(s);
  s.r->on_closed(s, what, socket_error);
}

void Runner::Impl::on_closed(Slot& s, short what, int socket_error) {
  if (s.phase == Phase::kIdle || !s.awaiting) {
    close_conn(s);  // an idle keep-alive connection went away
    return;
  }
  if ((what & BEV_EVENT_EOF) && s.connected) {
    // A response whose body runs to EOF ends here.
    std::string_view in = s.in.view();
    size_t end = in.find("\r\n\r\n");
    if (end != std::string_view::npos) {
      size_t head_len = end + 4;
      ResponseHead h;
      if (parse_response_head(in.substr(0, head_len), h) && body_until_eof(h)) {
        h.close = true;
        handle_response(s, h, in.substr(head_len), in.size());
        return;
      }
    }
  }
  if (!s.connected && sh.tls) return fail(s, tls_failure(s, what, socket_error));
  if (what & BEV_EVENT_TIMEOUT) return fail(s, ErrorKind::kTimeout);
  if (!s.connected) return fail(s, ErrorKind::kConnect);
  if (s.inherited && s.resp_bytes == 0 && !s.stale_retried) {
    // The server closed the idle keep-alive connection as we reused it:
    // what any HTTP client does is retry once on a fresh connection.
    s.stale_retried = true;
    ++stats.stale_retries;
    close_conn(s);
    s.inherited = false;
    send_request(s);
    return;
  }
  fail(s, ErrorKind::kReset);
}

void Runner::Impl::parse_responses(Slot& s) {
  while (s.open() && s.awaiting) {
    std::string_view in = s.in.view();
    if (in.empty()) return;
    s.resp_bytes = in.size();
    size_t end = in.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (in.size() > kMaxHead) fail(s, ErrorKind::kParse);
      return;
    }
    size_t head_len = end + 4;
    ResponseHead h;
    if (!parse_response_head(in.substr(0, head_len), h)) return fail(s, ErrorKind::kParse);
    if (h.status < 200) {  // 100 Continue and friends
      s.in.consume(head_len);
      stats.bytes_in += head_len;
      continue;
    }
    if (h.chunked) {
      dechunked.clear();
      size_t consumed = 0;
      Dechunk d = dechunk(in.substr(head_len), dechunked, &consumed);
      if (d == Dechunk::kError || (d == Dechunk::kIncomplete && in.size() > kMaxBody))
        return fail(s, ErrorKind::kParse);
      if (d == Dechunk::kIncomplete) return;
      handle_response(s, h, dechunked, head_len + consumed);
    } else if (h.content_length) {
      if (*h.content_length > kMaxBody) return fail(s, ErrorKind::kParse);
      size_t total = head_len + static_cast<size_t>(*h.content_length);
      if (in.size() < total) return;
      handle_response(s, h, in.substr(head_len, total - head_len), total);
    } else if (body_until_eof(h)) {
      if (in.size() > kMaxBody) return fail(s, ErrorKind::kParse);
      return;  // on_closed() finishes it
    } else {
      handle_response(s, h, {}, head_len);
    }
  }
}

void Runner::Impl::handle_response(Slot& s, const ResponseHead& h, std::string_view body,
                                   size_t total) {
  ++stats.responses;
  stats.bytes_in += total;
  const int status = h.status;
  const bool server_closes = h.close;
  if (!h.set_cookie.empty()) s.cookie.assign(cookie_pair(h.set_cookie));
  if (status == 401) challenge.assign(h.www_authenticate);
  bool soap_ok = true;
  bool empty = true;
  for (char c : body)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      empty = false;
      break;
    }
  bool inform_response = false;
  if (status >= 200 && status < 300 && !empty) {
    if (s.phase == Phase::kInform && !opt.parse_all && looks_like_inform_response(body)) {
      // Measured: parsing the InformResponse was ~12 % of the generator's
      // CPU for a new-connection session, and the generator shares the
      // box with the server. --parse-all turns this off.
      inform_response = true;
    } else {
      reader.reset();
      soap_ok = reader.feed(body) && reader.finish(env);
    }
  }
  // The views into the input buffer die here.
  s.in.consume(total);
  s.awaiting = false;
  s.inherited = false;
  if (server_closes) close_conn(s);

  if (status == 503) return end_session(s, Outcome::kBusy);
  if (status == 401) {
    // A 401 to credentials from a fresh challenge means they are wrong.
    if (opt.username.empty() || s.sent_nc == 1) return fail(s, ErrorKind::kAuth);
    if (!s.digest.take_challenge(challenge, cnonce())) return fail(s, ErrorKind::kAuth);
    ++stats.challenges;
    return send_request(s);
  }
  if (status >= 500) return fail(s, ErrorKind::kHttp5xx);
  if (status >= 400) return fail(s, ErrorKind::kHttp4xx);
  if (status >= 300) return fail(s, ErrorKind::kProtocol);
  if (!soap_ok) return fail(s, ErrorKind::kParse);

  if (inform_response) {
    stats.inform_us.record(static_cast<uint64_t>(monotonic_us() - s.t_inform));
    return after_inform(s);
  }
  if (empty || std::holds_alternative<soap::Empty>(env.body)) {
    // An empty response ends the session, but only after our empty POST.
    if (s.phase == Phase::kCpe) return end_session(s, Outcome::kCompleted);
    return fail(s, ErrorKind::kProtocol);
  }
  switch (s.phase) {
    case Phase::kInform: {
      if (!std::holds_alternative<soap::InformResponse>(env.body))
        return fail(s, ErrorKind::kProtocol);
      stats.inform_us.record(static_cast<uint64_t>(monotonic_us() - s.t_inform));
      return after_inform(s);
    }
    case Phase::kTransferComplete:
      if (!std::holds_alternative<soap::TransferCompleteResponse>(env.body))
        return fail(s, ErrorKind::kProtocol);
      ++stats.transfer_completes;
      s.phase = Phase::kCpe;
      s.body.clear();
      return send_request(s);
    case Phase::kCpe: {
      if (!is_acs_request(env.body)) return fail(s, ErrorKind::kProtocol);
      ++stats.acs_requests[std::string(soap::method_name(env.body))];
      soap::Envelope resp;
      resp.cwmp_ns = env.cwmp_ns;
      resp.header.id = env.header.id;
      resp.body = answer_acs_request(s.kit->model, s.serial, env.body, s.cpe);
      s.body.clear();
      soap::write(s.body, resp);
      return send_request(s);
    }
    case Phase::kIdle:
      break;
  }
  fail(s, ErrorKind::kProtocol);
}

// The InformResponse is in: TransferComplete if the session has one to
// report, else the empty POST.
void Runner::Impl::after_inform(Slot& s) {
  if (s.woken) woken_informed(s);
  s.body.clear();
  if (s.send_tc) {
    s.phase = Phase::kTransferComplete;
    soap::Envelope tc;
    tc.header.id = "2";
    soap::TransferComplete t;
    t.command_key = s.tc_key;
    t.start_time = now_string();
    t.complete_time = now_string();
    tc.body = std::move(t);
    soap::write(s.body, tc);
  } else {
    s.phase = Phase::kCpe;
  }
  send_request(s);
}

void Runner::Impl::fail(Slot& s, ErrorKind kind) {
  ++stats.errors[static_cast<size_t>(kind)];
  // Each device once: what overload does to a session is retried, as a 503 is.
  bool counts = opt.sessions || (opt.each_device_once && !overload_error(kind));
  if (counts) {
    uint64_t k = opt.sessions ? opt.sessions : opt.devices;
    auto allowed = static_cast<uint64_t>(opt.max_error_rate * static_cast<double>(k));
    if (sh.errors.fetch_add(1) + 1 > allowed) {
      sh.gave_up = true;
      sh.stop = true;
    }
  }
  close_conn(s);
  end_session(s, Outcome::kFailed);
}

void Runner::Impl::end_session(Slot& s, Outcome outcome) {
  if (s.phase == Phase::kIdle) return;
  int64_t now = monotonic_us();
  if (outcome == Outcome::kCompleted) {
    if (opt.cr.on()) known[s.local] = 1;
    if (s.woken) ++stats.cr.woken_completed;
    if (s.tail) {
      ++stats.cr.tail_completed;
    } else {
      ++stats.completed;
      stats.session_us.record(static_cast<uint64_t>(now - s.t_start));
      last_completion = now;
    }
    if (s.reports_pending) pending.erase(s.device);
  } else if (outcome == Outcome::kBusy) {
    ++stats.busy;
  }
  // What the ACS asked for happens whether or not the session ended well.
  if (s.cpe.reboot || s.cpe.download) {
    PendingActions& p = pending[s.device];
    if (s.cpe.reboot) {
      p.reboot = true;
      p.reboot_key = s.cpe.reboot_key;
    }
    if (s.cpe.download) {
      p.download = true;
      p.download_key = s.cpe.download_key;
    }
  }
  --busy[s.local];
  if (opt.each_device_once && !s.woken) settle_once(s, outcome, now);
  if (outcome != Outcome::kCompleted && opt.sessions) {
    if (sh.give_backs.fetch_add(1) < static_cast<int64_t>(opt.sessions)) sh.budget.fetch_add(1);
  }
  if (outcome != Outcome::kCompleted || !opt.keep_alive) close_conn(s);
  s.phase = Phase::kIdle;
  --inflight;
  if (s.woken) {
    wake_idle.push_back(&s);
  } else if (opt.concurrency > 0) {
    // Deferred, so a failing connect cannot recurse; after a failure wait
    // 1 ms rather than spin against a dead server.
    if (outcome == Outcome::kFailed) {
      timeval tv = to_timeval(1000);
      event_add(s.kick, &tv);
    } else {
      event_active(s.kick, EV_TIMEOUT, 0);
    }
  } else {
    idle.push_back(&s);
  }
  if (opt.cr.on()) after_woken(s);
  check_finish();
}

}  // namespace luacs::loadgen
