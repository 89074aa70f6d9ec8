// Client certificates on the https:// listeners (issue 14, docs/tls.md
// "Client certificates"): what a CPE's certificate lets it do.
//
// The handshake never fails on a client certificate (core/tls/context.h):
// the connection refuses the request instead, with a 403 and a log line
// naming the reason, counted by reason in /metrics:
//  - missing: none presented where [cwmp] tls_client_auth = required;
//  - invalid: presented, and it does not verify (expired, revoked, an
//    unknown CA): refused also where certificates are optional;
//  - device: it names another device than the one that informs with it
//    ([cwmp] tls_cert_binding), or a later message of the session comes
//    over a connection with another certificate;
//  - policy: the policy's authorize(dev, cert) said no (it then decides
//    instead of the rule, which it is told of as cert.bound).
// A certificate admitted at the Inform is stored with the device.
#include <openssl/ssl.h>

#include "core/server/worker.h"
#include "core/tls/binding.h"
#include "core/util/log.h"
#include "core/util/net.h"

namespace luacs::server {

namespace {

tls::Binding binding_of(const config::Config& c) {
  tls::Binding b;
  b.to = c.tls_cert_binding == config::CertBinding::kNone       ? tls::BindTo::kNone
         : c.tls_cert_binding == config::CertBinding::kDeviceId ? tls::BindTo::kDeviceId
                                                                : tls::BindTo::kSerial;
  b.in = c.tls_cert_binding_in == config::CertBindingField::kCommonName ? tls::BindIn::kCommonName
         : c.tls_cert_binding_in == config::CertBindingField::kSan      ? tls::BindIn::kSan
                                                                        : tls::BindIn::kAny;
  return b;
}

device::ClientCertificate to_device(const tls::PeerCertificate& p) {
  device::ClientCertificate c;
  c.subject = p.subject;
  c.issuer = p.issuer;
  c.common_name = p.common_name;
  c.sans = p.sans;
  c.serial = p.serial;
  c.sha256 = p.sha256;
  c.not_after = p.not_after;
  return c;
}

// A device never stored, as its Inform describes it (for authorize).
device::Device from_inform(const soap::Inform& in, const std::string& id, const std::string& peer) {
  device::Device d;
  d.id = id;
  d.oui = in.device_id.oui;
  d.product_class = in.device_id.product_class;
  d.serial_number = in.device_id.serial_number;
  d.manufacturer = in.device_id.manufacturer;
  d.remote_address = util::address_of(peer);
  for (const auto& p : in.parameters) d.parameters[p.name] = {p.value, p.type, {}};
  return d;
}

}  // namespace

const tls::PeerCertificate* Connection::client_certificate() {
  if (!ssl_ || w_.cfg().tls_client_ca.empty()) return nullptr;
  if (!peer_cert_) peer_cert_ = tls::peer_certificate(ssl_);
  return &*peer_cert_;
}

bool Connection::certificate_passes() {
  if (cert_checked_) return true;
  const tls::PeerCertificate* c = client_certificate();
  if (!c) return true;
  if (!c->present) {
    if (w_.cfg().tls_client_auth != "required") return cert_checked_ = true;
    refuse_certificate(CertRefusal::kMissing, "no client certificate", "");
    return false;
  }
  if (!c->verified) {
    refuse_certificate(CertRefusal::kInvalid, c->reason, "");
    return false;
  }
  return cert_checked_ = true;
}

void Connection::refuse_certificate(CertRefusal why, const std::string& reason,
                                    const std::string& device) {
  auto& st = w_.shared().stats;
  (why == CertRefusal::kMissing   ? st.tls_client_missing
   : why == CertRefusal::kInvalid ? st.tls_client_invalid
   : why == CertRefusal::kDevice  ? st.tls_client_wrong_device
                                  : st.tls_client_policy)
      .fetch_add(1, std::memory_order_relaxed);
  std::string line = "tls client certificate refused peer=" + peer_;
  if (!device.empty()) line += " device=" + device;
  if (peer_cert_ && peer_cert_->present)
    line += " subject=" + log::quoted(peer_cert_->subject) + " sha256=" + peer_cert_->sha256;
  log::warn_from(peer_addr_, line + " reason=" + log::quoted(reason));
  send_error(403, "Forbidden: client certificate refused (" + reason + ")", true);
}

void Connection::admit(std::shared_ptr<soap::Envelope> env, const std::string& device) {
  const tls::PeerCertificate* c = client_certificate();
  if (!c || !c->present) return open_session(std::move(env), device, false);
  const auto& inform = std::get<soap::Inform>(env->body);
  const bool bound = tls::binds(*c, binding_of(w_.cfg()), inform.device_id.serial_number, device);
  lua::Engine* engine = w_.engine();
  if (!engine || !engine->has_authorize()) {
    if (!bound) {
      refuse_certificate(CertRefusal::kDevice, "the certificate names another device", device);
      finish_request(true);
      return;
    }
    return open_session(std::move(env), device, false);
  }
  // The policy decides, with the device as stored.
  store::Store* store = w_.shared().store;
  if (!store) return authorize(std::move(env), device, nullptr, bound);
  if (auto cached = store->cached(device)) return authorize(std::move(env), device, cached, bound);
  waiting_ = true;
  store->load_device(
      device, w_.executor(),
      [w = &w_, cid = id_, env, device, bound](std::shared_ptr<const store::Device> dev, bool ok) {
        Connection* c = w->find_connection(cid);
        if (!c) return;
        c->waiting_ = false;
        if (!ok) {
          c->send_busy(Refusal::kStoreDown);
          c->finish_request(true);
          return;
        }
        c->authorize(env, device, std::move(dev), bound);
        c->unblock();
      });
}

void Connection::authorize(std::shared_ptr<soap::Envelope> env, const std::string& device,
                           std::shared_ptr<const device::Device> stored, bool bound) {
  const auto cert = to_device(*peer_cert_);
  const auto verdict =
      stored && !stored->id.empty()
          ? w_.engine()->authorize(*stored, cert, bound)
          : w_.engine()->authorize(from_inform(std::get<soap::Inform>(env->body), device, peer_),
                                   cert, bound);
  if (!verdict.allowed) {
    refuse_certificate(CertRefusal::kPolicy, verdict.reason, device);
    finish_request(true);
    return;
  }
  open_session(std::move(env), device, false);
}

bool Connection::same_certificate(const SessionSlot& slot) {
  const tls::PeerCertificate* c = client_certificate();
  const auto& admitted = slot.driver->origin().client_certificate;
  if (!admitted) return true;  // the session began without one (plain HTTP)
  if (c && c->present && c->sha256 == admitted->sha256) return true;
  refuse_certificate(CertRefusal::kDevice, "another certificate than the session's",
                     slot.driver->device_id());
  return false;
}

std::optional<device::ClientCertificate> Connection::admitted_certificate() {
  const tls::PeerCertificate* c = client_certificate();
  if (!c || !c->present) return std::nullopt;
  return to_device(*c);
}

}  // namespace luacs::server
