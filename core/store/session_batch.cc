#include "core/store/session_batch.h"

#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/store/pg_text.h"

namespace luacs::store {

namespace {

struct DeviceRow {
  const SessionResult* latest = nullptr;
  // Views into the sessions, which outlive the encoding.
  std::string_view oui, product_class, serial_number, manufacturer, data_model_root, remote_address;
  int64_t first_ms = 0, last_ms = 0;
  std::optional<int64_t> boot_ms, bootstrap_ms;
  std::string parameters = std::string(1, '{');  // JSON object, escaped for the array literal
  bool has_parameters = false;
  std::set<std::string> tags_added, tags_removed;
  const SessionResult* certified = nullptr;  // the newest session with a client certificate
};

void keep_if_set(std::string_view& field, const std::string& value) {
  if (!value.empty()) field = value;
}

void max_into(std::optional<int64_t>& field, int64_t ms) {
  if (!field || *field < ms) field = ms;
}

// The batch's parameters, numbered in the order given.
struct ParamList {
  PgConnection::Params params;
  // "$n::type, $n+1::type, ..." for these columns (a braced list is
  // evaluated left to right, so numbering follows the text).
  std::string columns(std::initializer_list<std::pair<std::string, const char*>> cols) {
    std::string refs;
    for (const auto& [value, type] : cols) {
      params.emplace_back(value);
      if (!refs.empty()) refs += ", ";
      refs += '$';
      refs += std::to_string(params.size());
      refs += "::";
      refs += type;
    }
    return refs;
  }
};

}  // namespace

EncodedBatch encode_batch(std::span<const SessionResult* const> sessions,
                          std::span<const SentTransfer* const> sent) {
  EncodedBatch out;

  // ---- merge per device, keeping first-appearance order
  std::vector<DeviceRow> rows;
  std::unordered_map<std::string_view, size_t> row_of;
  rows.reserve(sessions.size());
  row_of.reserve(sessions.size());
  struct FaultRow {
    const Fault* fault;
    int count;
  };
  std::vector<FaultRow> faults;
  std::map<std::pair<std::string_view, std::string_view>, size_t> fault_of;
  std::vector<const TaskResult*> task_results;
  std::unordered_map<int64_t, size_t> task_of;

  for (const SessionResult* r : sessions) {
    auto [it, fresh] = row_of.try_emplace(r->device_id, rows.size());
    if (fresh) rows.emplace_back();
    DeviceRow& d = rows[it->second];
    const int64_t at = to_epoch_ms(r->inform_time);
    if (fresh || at < d.first_ms) d.first_ms = at;
    d.last_ms = at;
    d.latest = r;
    if (r->client_certificate) d.certified = r;
    keep_if_set(d.oui, r->identity.oui);
    keep_if_set(d.product_class, r->identity.product_class);
    keep_if_set(d.serial_number, r->identity.serial_number);
    keep_if_set(d.manufacturer, r->identity.manufacturer);
    keep_if_set(d.data_model_root, r->data_model_root);
    keep_if_set(d.remote_address, r->remote_address);
    for (const auto& e : r->events) {
      if (e.code == "1 BOOT") max_into(d.boot_ms, at);
      if (e.code == "0 BOOTSTRAP") max_into(d.bootstrap_ms, at);
    }
    for (const auto& [pv, read_at] : r->parameters) {
      if (d.has_parameters) d.parameters += ',';
      d.has_parameters = true;
      append_json_string_in_array(d.parameters, pv.name);
      d.parameters += ":[";
      append_json_string_in_array(d.parameters, pv.value);
      d.parameters += ',';
      append_json_string_in_array(d.parameters, pv.type);
      d.parameters += ',';
      append_epoch_seconds(d.parameters, to_epoch_ms(read_at == Time{} ? r->inform_time : read_at));
      d.parameters += ']';
    }
    for (const auto& t : r->tags_added) {
      d.tags_removed.erase(t);
      d.tags_added.insert(t);
    }
    for (const auto& t : r->tags_removed) {
      d.tags_added.erase(t);
      d.tags_removed.insert(t);
    }
    for (const Fault& f : r->faults) {
      const std::string_view dev = f.device_id.empty() ? r->device_id : f.device_id;
      auto [fi, fnew] = fault_of.try_emplace({dev, f.source}, faults.size());
      if (fnew) {
        faults.push_back({&f, 1});
      } else {
        faults[fi->second].fault = &f;
        ++faults[fi->second].count;
      }
    }
    for (const TaskResult& t : r->task_results) {
      auto [ti, tnew] = task_of.try_emplace(t.id, task_results.size());
      if (tnew) {
        task_results.push_back(&t);
      } else {
        task_results[ti->second] = &t;
      }
    }
  }

  ParamList p;
  std::vector<std::string> ctes;

  // ---- devices
  if (!rows.empty()) {
    ArrayLiteral id, oui, pc, sn, mf, dm, fs, li, lb, lbs, ra, ev, pa;
    size_t pa_bytes = 2;
    for (const DeviceRow& d : rows) pa_bytes += d.parameters.size() + 4;
    pa.reserve(pa_bytes);
    for (DeviceRow& d : rows) {
      id.add(d.latest->device_id);
      oui.add(d.oui);
      pc.add(d.product_class);
      sn.add(d.serial_number);
      mf.add(d.manufacturer);
      dm.add(d.data_model_root);
      fs.add(d.first_ms);
      li.add(d.last_ms);
      d.boot_ms ? lb.add(*d.boot_ms) : lb.add_null();
      d.bootstrap_ms ? lbs.add(*d.bootstrap_ms) : lbs.add_null();
      ra.add(d.remote_address);
      ArrayLiteral codes;
      for (const auto& e : d.latest->events) codes.add(e.code);
      ev.add(codes.take());
      d.parameters += '}';
      pa.add_escaped(d.parameters);
    }
    out.devices = rows.size();
    std::string sql =
        "d AS (INSERT INTO devices AS t (id, oui, product_class, serial_number, manufacturer,"
        " data_model_root, first_seen, last_inform, last_boot, last_bootstrap, remote_address,"
        " last_events, parameters)"
        " SELECT u.id, u.oui, u.pc, u.sn, u.mf, u.dm, to_timestamp(u.fs::float8 / 1000),"
        " to_timestamp(u.li::float8 / 1000), to_timestamp(u.lb::float8 / 1000),"
        " to_timestamp(u.lbs::float8 / 1000), u.ra, u.ev::text[], u.pa::jsonb FROM unnest(";
    sql += p.columns({{id.take(), "text[]"},
                      {oui.take(), "text[]"},
                      {pc.take(), "text[]"},
                      {sn.take(), "text[]"},
                      {mf.take(), "text[]"},
                      {dm.take(), "text[]"},
                      {fs.take(), "int8[]"},
                      {li.take(), "int8[]"},
                      {lb.take(), "int8[]"},
                      {lbs.take(), "int8[]"},
                      {ra.take(), "text[]"},
                      {ev.take(), "text[]"},
                      {pa.take(), "text[]"}});
    sql +=
        ") AS u(id, oui, pc, sn, mf, dm, fs, li, lb, lbs, ra, ev, pa)"
        " ON CONFLICT (id) DO UPDATE SET"
        " oui = COALESCE(NULLIF(EXCLUDED.oui, ''), t.oui),"
        " product_class = COALESCE(NULLIF(EXCLUDED.product_class, ''), t.product_class),"
        " serial_number = COALESCE(NULLIF(EXCLUDED.serial_number, ''), t.serial_number),"
        " manufacturer = COALESCE(NULLIF(EXCLUDED.manufacturer, ''), t.manufacturer),"
        " data_model_root = COALESCE(NULLIF(EXCLUDED.data_model_root, ''), t.data_model_root),"
        " last_inform = EXCLUDED.last_inform,"
        " last_boot = COALESCE(EXCLUDED.last_boot, t.last_boot),"
        " last_bootstrap = COALESCE(EXCLUDED.last_bootstrap, t.last_bootstrap),"
        " remote_address = COALESCE(NULLIF(EXCLUDED.remote_address, ''), t.remote_address),"
        " last_events = EXCLUDED.last_events,"
        // An empty delta keeps the stored datum (no TOAST rewrite).
        " parameters = CASE WHEN EXCLUDED.parameters = '{}'::jsonb THEN t.parameters"
        " ELSE t.parameters || EXCLUDED.parameters END)";
    ctes.push_back(std::move(sql));

    // ---- session_log: one row per session
    ArrayLiteral ld, la, ls;
    for (const SessionResult* r : sessions) {
      ld.add(r->device_id);
      la.add(to_epoch_ms(r->inform_time));
      ls.add(r->summary.empty() ? std::string_view("{}") : std::string_view(r->summary));
    }
    out.sessions = sessions.size();
    ctes.push_back(
        "l AS (INSERT INTO session_log (device_id, at, summary)"
        " SELECT u.d, to_timestamp(u.a::float8 / 1000), u.s::jsonb FROM unnest(" +
        p.columns({{ld.take(), "text[]"}, {la.take(), "int8[]"}, {ls.take(), "text[]"}}) +
        ") AS u(d, a, s))");
  }

  // ---- faults
  if (!faults.empty()) {
    ArrayLiteral fd, fsrc, fc, fm, fx, fn;
    for (const auto& [key, index] : fault_of) {
      const FaultRow& f = faults[index];
      fd.add(key.first);
      fsrc.add(f.fault->source);
      fc.add(f.fault->code);
      fm.add(f.fault->message);
      fx.add(f.fault->detail.empty() ? std::string_view("{}") : std::string_view(f.fault->detail));
      fn.add(static_cast<int64_t>(f.count));
    }
    out.faults = faults.size();
    ctes.push_back(
        "f AS (INSERT INTO faults AS t (device_id, source, code, message, detail, retries,"
        " first_seen, last_seen)"
        " SELECT u.d, u.s, u.c, u.m, u.x::jsonb, u.n - 1, now(), now() FROM unnest(" +
        p.columns({{fd.take(), "text[]"},
                   {fsrc.take(), "text[]"},
                   {fc.take(), "int8[]"},
                   {fm.take(), "text[]"},
                   {fx.take(), "text[]"},
                   {fn.take(), "int4[]"}}) +
        ") AS u(d, s, c, m, x, n)"
        " ON CONFLICT (device_id, source) DO UPDATE SET code = EXCLUDED.code,"
        " message = EXCLUDED.message, detail = EXCLUDED.detail,"
        " retries = t.retries + EXCLUDED.retries + 1, last_seen = EXCLUDED.last_seen)");
  }

  // ---- task results
  if (!task_results.empty()) {
    ArrayLiteral ti, tok, tr;
    for (const TaskResult* t : task_results) {
      ti.add(t->id);
      tok.add_bool(t->ok);
      tr.add(t->result.empty() ? std::string_view("{}") : std::string_view(t->result));
    }
    out.task_results = task_results.size();
    ctes.push_back(
        "k AS (UPDATE tasks AS t SET state = CASE WHEN u.ok THEN 'done' ELSE 'fault' END,"
        " result = u.r::jsonb, finished = now() FROM unnest(" +
        p.columns({{ti.take(), "int8[]"}, {tok.take(), "bool[]"}, {tr.take(), "text[]"}}) +
        ") AS u(id, ok, r) WHERE t.id = u.id)");
  }

  // ---- client certificates: the newest of each device's sessions
  {
    ArrayLiteral cd, csub, ciss, cser, csha, cna, cat;
    for (const DeviceRow& d : rows) {
      const SessionResult* with = d.certified;
      if (!with) continue;
      const ClientCertificate& c = *with->client_certificate;
      cd.add(with->device_id);
      csub.add(c.subject);
      ciss.add(c.issuer);
      cser.add(c.serial);
      csha.add(c.sha256);
      c.not_after.empty() ? cna.add_null() : cna.add(c.not_after);
      cat.add(to_epoch_ms(with->inform_time));
      ++out.certificates;
    }
    if (out.certificates)
      ctes.push_back(
          "c AS (INSERT INTO device_certificates AS t (device_id, subject, issuer, serial, sha256,"
          " not_after, first_seen, last_seen) SELECT u.d, u.s, u.i, u.n, u.h, u.a::timestamptz,"
          " to_timestamp(u.t::float8 / 1000), to_timestamp(u.t::float8 / 1000) FROM unnest(" +
          p.columns({{cd.take(), "text[]"},
                     {csub.take(), "text[]"},
                     {ciss.take(), "text[]"},
                     {cser.take(), "text[]"},
                     {csha.take(), "text[]"},
                     {cna.take(), "text[]"},
                     {cat.take(), "int8[]"}}) +
          ") AS u(d, s, i, n, h, a, t) ON CONFLICT (device_id) DO UPDATE SET"
          " subject = EXCLUDED.subject, issuer = EXCLUDED.issuer, serial = EXCLUDED.serial,"
          " sha256 = EXCLUDED.sha256, not_after = EXCLUDED.not_after,"
          " first_seen = CASE WHEN t.sha256 = EXCLUDED.sha256 THEN t.first_seen"
          " ELSE EXCLUDED.first_seen END, last_seen = EXCLUDED.last_seen"
          " WHERE t.sha256 <> EXCLUDED.sha256 OR t.last_seen < EXCLUDED.last_seen - interval '1 "
          "hour')");
  }

  // ---- transfers sent
  if (!sent.empty()) {
    ArrayLiteral xd, xk, xdl, xft, xu, xa;
    for (const SentTransfer* s : sent) {
      xd.add(s->transfer.device_id);
      xk.add(s->transfer.command_key);
      xdl.add_bool(s->transfer.is_download);
      xft.add(s->transfer.file_type);
      xu.add(s->transfer.url);
      xa.add(to_epoch_ms(s->sent_at));
    }
    out.transfers = sent.size();
    ctes.push_back(
        "x AS (INSERT INTO transfers (device_id, command_key, is_download, file_type, url,"
        " sent_at) SELECT u.d, u.k, u.dl, u.ft, u.url, to_timestamp(u.a::float8 / 1000)"
        " FROM unnest(" +
        p.columns({{xd.take(), "text[]"},
                   {xk.take(), "text[]"},
                   {xdl.take(), "bool[]"},
                   {xft.take(), "text[]"},
                   {xu.take(), "text[]"},
                   {xa.take(), "int8[]"}}) +
        ") AS u(d, k, dl, ft, url, a))");
  }

  if (!ctes.empty()) {
    Statement main;
    main.sql = "WITH ";
    for (size_t i = 0; i < ctes.size(); ++i) {
      if (i) main.sql += ", ";
      main.sql += ctes[i];
    }
    main.sql += " SELECT 1";
    main.params = std::move(p.params);
    out.statements.push_back(std::move(main));
  }

  // ---- tags: net changes, computed from the row as it is now
  ArrayLiteral gi, ga, gr;
  for (const DeviceRow& d : rows) {
    if (d.tags_added.empty() && d.tags_removed.empty()) continue;
    gi.add(d.latest->device_id);
    ArrayLiteral a, r;
    for (const auto& t : d.tags_added) a.add(t);
    for (const auto& t : d.tags_removed) r.add(t);
    ga.add(a.take());
    gr.add(r.take());
    ++out.tag_changes;
  }
  if (out.tag_changes) {
    Statement tags;
    tags.sql =
        "UPDATE devices AS t SET tags = ARRAY(SELECT DISTINCT x FROM unnest(t.tags || u.a::text[])"
        " AS x WHERE x <> ALL (u.r::text[]) ORDER BY x)"
        " FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, a, r) WHERE t.id = u.id";
    tags.params = {gi.take(), ga.take(), gr.take()};
    out.statements.push_back(std::move(tags));
  }
  return out;
}

}  // namespace luacs::store
