#include "core/soap/reader.h"

#include "core/soap/frames.h"
#include "core/soap/lexical.h"
#include "core/util/text.h"

#include <expat.h>

#include <array>
#include <climits>
#include <cstring>
#include <new>
#include <optional>
#include <random>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace luacs::soap {
namespace {

using frames::as;
using frames::Frame;
using frames::kIdx;
using frames::kSkipFrame;
using frames::Leaf;
using frames::leaf;
using frames::Node;
using frames::node;
using frames::push;
using frames::rpc_table;
using frames::RpcEntry;
using frames::trimmed;
using lexical::expat_encoding;
using lexical::parse_bool;
using lexical::parse_int;
using lexical::parse_u32;

constexpr std::string_view kSoapEnvNs = "http://schemas.xmlsoap.org/soap/envelope/";
constexpr std::string_view kXsiNs = "http://www.w3.org/2001/XMLSchema-instance";
constexpr std::string_view kCwmpNsPrefix = "urn:dslforum-org:cwmp-";
constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

struct QName {
  std::string_view ns;
  std::string_view local;
};

// A name as written: "prefix:local" or "local".
struct RawName {
  std::string_view prefix;
  std::string_view local;
};

RawName split_raw(std::string_view s) {
  size_t p = s.find(':');
  if (p == std::string_view::npos) return {{}, s};
  return {s.substr(0, p), s.substr(p + 1)};
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// XML whitespace.
std::string_view trim(std::string_view s) {
  return text::trim(s, " \t\r\n");
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// xsi:type="xsd:boolean" / "xs:boolean" / "ns1:unsignedInt" -> local part.
// The attribute itself is matched on its local name "type": the
// XMLSchema-instance one wins, any other "type" is accepted as well.
// `ns_of(prefix)` is the namespace a prefix is bound to.
template <class NsOf>
void read_value_type(std::string& type, const XML_Char** atts, NsOf&& ns_of) {
  std::string_view found;
  bool have = false;
  for (; atts[0] != nullptr; atts += 2) {
    RawName a = split_raw(atts[0]);
    if (a.local != "type" || a.prefix == "xmlns") continue;
    if (!a.prefix.empty() && ns_of(a.prefix) == kXsiNs) {
      found = atts[1];
      have = true;
      break;
    }
    if (!have) {
      found = atts[1];
      have = true;
    }
  }
  if (!have) return;
  found = trim(found);
  size_t p = found.find_last_of(":}");
  if (p != std::string_view::npos) found = trim(found.substr(p + 1));  // "xsd: int"
  if (!found.empty()) type.assign(found);
}

}  // namespace

// ---- the reader --------------------------------------------------------------

struct Reader::Impl {
  struct ParserFree {
    void operator()(XML_Parser p) const { XML_ParserFree(p); }
  };

  enum class State : uint8_t { kPrefix, kParsing, kDone, kFailed };

  explicit Impl(ReaderLimits l) : limits(l) {
    std::random_device rd;
    salt = (static_cast<unsigned long>(rd()) << 16) ^ rd();
    if constexpr (sizeof(unsigned long) >= 8) salt ^= static_cast<unsigned long>(rd()) << 32;
    if (salt == 0) salt = 0x9e3779b9;  // 0 makes expat draw its own
    parser.reset(XML_ParserCreate(nullptr));
    if (!parser) throw std::bad_alloc();
    stack.reserve(limits.max_depth + 1);
    text.reserve(256);
  }

  ReaderLimits limits;
  unsigned long salt = 0;
  std::unique_ptr<XML_ParserStruct, ParserFree> parser;
  std::string error;

  // Per document.
  State state = State::kPrefix;
  const char* encoding = nullptr;  // override from the HTTP header
  size_t bom = 0;                  // bytes of a UTF-8 BOM seen so far
  bool prefix_space = false;       // whitespace seen before the first '<'
  bool expat_ready = false;        // reset for this document (ready_expat)
  size_t skipped_lines = 0;        // newlines in that whitespace
  bool any_data = false;           // feed() got at least one byte
  bool stopped = false;            // a handler stopped the parser
  uint64_t given = 0;              // bytes handed to expat
  std::string held;                // bytes held back while a token is open
  size_t elements = 0;
  size_t unknown_elements = 0;          // in skipped subtrees
  size_t attributes = 0, ns_decls = 0;  // what grows expat's tables
  size_t text_bytes = 0;                // character data since the last tag
  bool capture = false;                 // the open element is a leaf whose text we keep
  bool body_seen = false;
  size_t body_children = 0;
  bool id_seen = false;
  std::string rpc_ns, id_ns, decl_ns;  // cwmp namespace candidates
  std::vector<Frame> stack;
  // The namespace declarations in scope, innermost last: the first
  // `bound` entries (the strings keep their room from one document to the
  // next). expat runs without its namespace processing, which costs a
  // fifth of its time on an Inform: names arrive as written
  // ("cwmp:Inform") and prefixes are resolved here.
  struct Binding {
    std::string prefix, uri;
    size_t depth = 0;  // of the element that declares it
  };
  std::vector<Binding> bindings;
  size_t bound = 0;
  std::string text;
  Header header;
  Body body;

  // A document with this much of what expat keeps in its tables (one entry
  // per distinct name, cleared entry by entry at every reset) leaves a
  // parser that slows every later document down: it is replaced.
  bool grown() const { return elements > 20'000 || attributes > 20'000 || ns_decls > 1'000; }

  void reset(std::string_view enc) {
    if (grown()) {
      parser.reset(XML_ParserCreate(nullptr));
      if (!parser) throw std::bad_alloc();
    }
    if (text.capacity() > (1u << 20)) std::string().swap(text);
    if (held.capacity() > (1u << 20)) std::string().swap(held);
    error.clear();
    encoding = expat_encoding(enc);
    expat_ready = false;
    // Whitespace cannot be skipped byte-wise in UTF-16.
    state =
        (encoding != nullptr && starts_with(encoding, "UTF-16")) ? State::kParsing : State::kPrefix;
    any_data = false;
    bom = 0;
    prefix_space = false;
    skipped_lines = 0;
    stopped = false;
    given = 0;
    held.clear();
    elements = 0;
    unknown_elements = 0;
    attributes = 0;
    ns_decls = 0;
    text_bytes = 0;
    capture = false;
    body_seen = false;
    body_children = 0;
    id_seen = false;
    rpc_ns.clear();
    id_ns.clear();
    decl_ns.clear();
    stack.clear();
    bound = 0;
    text.clear();
    header = Header{};
    body = Empty{};
    if (state == State::kParsing) ready_expat();
  }

  // Expat is reset only for a document that has markup: the empty POST,
  // half of a session's requests, never needs it (XML_ParserReset frees
  // and re-initialises its pools, ~1.5 % of a session's CPU).
  void ready_expat() {
    expat_ready = true;
    XML_Parser p = parser.get();
    XML_ParserReset(p, nullptr);
    // XML_ParserReset clears the handlers, the user data and the hash salt
    // (a zero salt would cost a getrandom() per document).
    XML_SetUserData(p, this);
    XML_SetHashSalt(p, salt);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetElementHandler(p, &Impl::on_start, &Impl::on_end);
    XML_SetCharacterDataHandler(p, &Impl::on_text);
    XML_SetStartDoctypeDeclHandler(p, &Impl::on_doctype);
    XML_SetEntityDeclHandler(p, &Impl::on_entity_decl);
    XML_SetCommentHandler(p, &Impl::on_comment);
    XML_SetProcessingInstructionHandler(p, &Impl::on_pi);
    if (state == State::kParsing && encoding != nullptr) XML_SetEncoding(p, encoding);
  }

  std::string position() const {
    XML_Parser p = parser.get();
    std::string s = "line ";
    s += std::to_string(XML_GetCurrentLineNumber(p) + skipped_lines);
    s += ':';
    s += std::to_string(XML_GetCurrentColumnNumber(p));
    return s;
  }

  // From a handler: record why and stop expat.
  // Stops the parse with `message` as the error (the first one stays).
  void halt(std::string message) {
    if (stopped) return;
    stopped = true;
    error = std::move(message);
    XML_StopParser(parser.get(), XML_FALSE);
  }

  void stop(std::string_view why) { halt(std::string(why) + " at " + position()); }

  bool fail(std::string_view why) {
    if (error.empty()) error.assign(why);
    state = State::kFailed;
    return false;
  }

  bool parse(const char* data, size_t len, bool final) {
    XML_Parser p = parser.get();
    do {
      int n = static_cast<int>(len > (1u << 30) ? (1u << 30) : len);
      if (XML_Parse(p, data, n, final && static_cast<size_t>(n) == len ? XML_TRUE : XML_FALSE) ==
          XML_STATUS_ERROR) {
        if (stopped) return fail(error);
        std::string why = "XML error at ";
        why += position();
        why += ": ";
        why += XML_ErrorString(XML_GetErrorCode(p));
        return fail(why);
      }
      data += n;
      len -= static_cast<size_t>(n);
    } while (len > 0);
    return true;
  }

  // Bytes of the token expat holds unfinished: it re-scans them from their
  // start at every call.
  uint64_t unfinished() const {
    const XML_Index at = XML_GetCurrentByteIndex(parser.get());
    return at < 0 || static_cast<uint64_t>(at) > given ? 0 : given - at;
  }

  // The open token (in expat and held back here) past the cap: the reader
  // fails.
  bool token_too_long(uint64_t in_expat) {
    if (in_expat + held.size() <= limits.max_token_bytes) return false;
    fail("markup longer than " + std::to_string(limits.max_token_bytes) +
         " bytes (a tag, a name, a comment or a reference) at " + position());
    return true;
  }

  // expat with the next piece, or the piece held back while expat holds an
  // unfinished token and the pieces since do not yet double it: each byte
  // is then scanned a bounded number of times. (The last call left the
  // open token within the cap.)
  bool give(const char* data, size_t len) {
    const uint64_t open = unfinished();
    constexpr uint64_t kDeferFrom = 4096;
    if (open >= kDeferFrom && held.size() + len < open) {
      held.append(data, len);
      return !token_too_long(open);
    }
    bool ok;
    if (held.empty()) {
      given += len;
      ok = parse(data, len, false);
    } else {
      held.append(data, len);
      given += held.size();
      ok = parse(held.data(), held.size(), false);
      held.clear();
    }
    return ok && !token_too_long(unfinished());
  }

  bool feed(const char* data, size_t len) {
    if (state == State::kFailed) return false;
    if (state == State::kDone) {
      error = "feed() after finish(); call reset() first";
      return fail(error);
    }
    if (len > 0) any_data = true;
    if (state == State::kPrefix) {
      // Skip a UTF-8 BOM and whitespace before the first '<' ourselves:
      // expat refuses whitespace before an XML declaration.
      size_t i = 0;
      for (; i < len; ++i) {
        char c = data[i];
        if (bom < 3 && !prefix_space && c == kUtf8Bom[bom]) {
          ++bom;
          continue;
        }
        if (bom == 1 || bom == 2) break;  // not a BOM after all: data
        if (!is_space(c)) break;
        prefix_space = true;
        if (c == '\n') ++skipped_lines;
      }
      if (i == len) return true;
      state = State::kParsing;
      ready_expat();
      const char* enc = bom == 3 ? "UTF-8" : encoding;
      if (enc != nullptr) XML_SetEncoding(parser.get(), enc);
      if ((bom == 1 || bom == 2) && !give(kUtf8Bom.data(), bom)) return false;
      data += i;
      len -= i;
    }
    return give(data, len);
  }

  bool finish(Envelope& out) {
    if (state == State::kFailed) return false;
    if (state == State::kDone) {
      error = "finish() called twice; call reset() first";
      return fail(error);
    }
    if ((state == State::kPrefix && bom != 1 && bom != 2) || !any_data) {
      // Empty or whitespace-only: the CWMP empty POST.
      state = State::kDone;
      out.cwmp_ns.assign(kCwmpNs10);
      out.header = Header{};
      out.body = Empty{};
      return true;
    }
    if (state == State::kPrefix) {  // a lone partial BOM
      state = State::kParsing;
      ready_expat();
      if (!give(kUtf8Bom.data(), bom)) return false;
    }
    if (!held.empty() && !parse(held.data(), held.size(), false)) return false;
    held.clear();
    if (!parse(nullptr, 0, true)) return false;
    if (!body_seen) return fail("not a SOAP message: Envelope has no Body");
    state = State::kDone;
    if (!rpc_ns.empty())
      out.cwmp_ns.assign(rpc_ns);
    else if (!id_ns.empty())
      out.cwmp_ns.assign(id_ns);
    else if (!decl_ns.empty())
      out.cwmp_ns.assign(decl_ns);
    else
      out.cwmp_ns.assign(kCwmpNs10);
    out.header = std::move(header);
    out.body = std::move(body);
    return true;
  }

  // ---- expat callbacks ----

  static void XMLCALL on_start(void* ud, const XML_Char* name, const XML_Char** atts) {
    static_cast<Impl*>(ud)->start(name, atts);
  }
  static void XMLCALL on_end(void* ud, const XML_Char*) { static_cast<Impl*>(ud)->end(); }
  static void XMLCALL on_text(void* ud, const XML_Char* s, int len) {
    static_cast<Impl*>(ud)->chars(s, static_cast<size_t>(len));
  }
  static void XMLCALL on_doctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    static_cast<Impl*>(ud)->stop("DTD not allowed");
  }
  static void XMLCALL on_entity_decl(void* ud, const XML_Char*, int, const XML_Char*, int,
                                     const XML_Char*, const XML_Char*, const XML_Char*,
                                     const XML_Char*) {
    static_cast<Impl*>(ud)->stop("entity declarations not allowed");
  }
  // CPEs send neither (the corpus has none): a long one is an attack.
  static void XMLCALL on_comment(void* ud, const XML_Char* data) {
    auto* self = static_cast<Impl*>(ud);
    if (std::strlen(data) > self->limits.max_comment_bytes)
      self->stop("comment longer than " + std::to_string(self->limits.max_comment_bytes) +
                 " bytes");
  }
  static void XMLCALL on_pi(void* ud, const XML_Char*, const XML_Char* data) {
    auto* self = static_cast<Impl*>(ud);
    if (std::strlen(data) > self->limits.max_comment_bytes)
      self->stop("processing instruction longer than " +
                 std::to_string(self->limits.max_comment_bytes) + " bytes");
  }
  // The namespace `prefix` is bound to ("" for the default namespace);
  // nullopt when it is not bound.
  std::optional<std::string_view> ns_of(std::string_view prefix) const {
    for (size_t i = bound; i-- > 0;)
      if (bindings[i].prefix == prefix) return std::string_view(bindings[i].uri);
    if (prefix.empty()) return std::string_view();
    if (prefix == "xml") return kXmlNs;
    return std::nullopt;
  }

  // A document error expat would have reported with its namespace
  // processing on, in its words.
  void xml_error(std::string_view what) {
    halt("XML error at " + position() + ": " + std::string(what));
  }

  // The xmlns attributes of an element at `depth`; false when one is not
  // allowed (expat's namespace errors).
  bool declare(const XML_Char** atts, size_t depth) {
    for (const XML_Char** a = atts; *a != nullptr; a += 2) {
      std::string_view n = a[0];
      if (n.size() < 5 || n.compare(0, 5, "xmlns") != 0) continue;
      std::string_view prefix;
      if (n.size() > 5) {
        if (n[5] != ':') continue;  // "xmlnsfoo": an ordinary attribute
        prefix = n.substr(6);
      }
      std::string_view uri = a[1];
      if (prefix == "xmlns") {
        xml_error("reserved prefix (xmlns) must not be declared or undeclared");
        return false;
      }
      if ((prefix == "xml") != (uri == kXmlNs)) {
        xml_error(
            "reserved prefix (xml) must not be undeclared or bound to another namespace name");
        return false;
      }
      if (!prefix.empty() && uri.empty()) {
        xml_error("must not undeclare prefix");
        return false;
      }
      ++ns_decls;
      if (decl_ns.empty() && starts_with(uri, kCwmpNsPrefix)) decl_ns.assign(uri);
      if (bound == bindings.size()) bindings.emplace_back();
      Binding& b = bindings[bound++];
      b.prefix.assign(prefix);
      b.uri.assign(uri);
      b.depth = depth;
    }
    return true;
  }

  void start(const XML_Char* name, const XML_Char** atts) {
    if (stopped) return;
    if (++elements > limits.max_elements) return stop("too many elements");
    for (const XML_Char** a = atts; *a != nullptr; a += 2) ++attributes;
    if (stack.size() >= limits.max_depth) return stop("elements nested too deeply");
    text_bytes = 0;
    if (!declare(atts, stack.size())) return;
    const RawName raw = split_raw(name);
    const std::optional<std::string_view> ns = ns_of(raw.prefix);
    if (!ns) return xml_error("unbound prefix");
    for (const XML_Char** a = atts; *a != nullptr; a += 2) {
      const RawName an = split_raw(a[0]);
      if (!an.prefix.empty() && an.prefix != "xmlns" && !ns_of(an.prefix))
        return xml_error("unbound prefix");
    }
    QName q{*ns, raw.local};
    Frame f;
    if (stack.empty()) {
      if (q.ns != kSoapEnvNs || q.local != "Envelope")
        return stop("root element is not a SOAP 1.1 Envelope");
      f = node(Node::kEnvelope, nullptr);
    } else {
      f = child(stack.back(), q, atts);
      if (stopped) return;
    }
    if (f.node == Node::kSkip && ++unknown_elements > limits.max_unknown_elements)
      return stop("too many unknown elements");
    stack.push_back(f);
    capture = f.node == Node::kLeaf;
    if (capture) text.clear();
  }

  void end() {
    if (stopped || stack.empty()) return;
    Frame f = stack.back();
    stack.pop_back();
    while (bound > 0 && bindings[bound - 1].depth == stack.size()) --bound;
    text_bytes = 0;
    if (f.node == Node::kLeaf && capture) store(f);
    capture = false;
  }

  void chars(const XML_Char* s, size_t len) {
    if (stopped) return;
    text_bytes += len;
    if (text_bytes > limits.max_text_bytes) return stop("element text too long");
    if (capture) text.append(s, len);
  }

  void store(const Frame& f) {
    switch (f.leaf) {
      case Leaf::kNone:
        break;
      case Leaf::kTrim:
        as<std::string>(f).assign(trim(text));
        break;
      case Leaf::kRaw:
        as<std::string>(f).assign(text);
        break;
      case Leaf::kU32:
        as<uint32_t>(f) = parse_u32(text);
        break;
      case Leaf::kInt:
        as<int>(f) = parse_int(text);
        break;
      case Leaf::kBool:
        as<bool>(f) = parse_bool(text);
        break;
      case Leaf::kOptTrim:
        as<std::optional<std::string>>(f).emplace(trim(text));
        break;
      case Leaf::kOptBool:
        as<std::optional<bool>>(f) = parse_bool(text);
        break;
      case Leaf::kOptU32:
        as<std::optional<uint32_t>>(f) = parse_u32(text);
        break;
      case Leaf::kFaultCode: {
        std::string_view t = trim(text);
        size_t p = t.rfind(':');
        if (p != std::string_view::npos) t = trim(t.substr(p + 1));  // "soap: Client"
        if (!t.empty()) as<std::string>(f).assign(t);
        break;
      }
      case Leaf::kTrimNonEmpty: {
        std::string_view t = trim(text);
        if (!t.empty()) as<std::string>(f).assign(t);
        break;
      }
    }
  }

  // What the element `q` is, given its parent.
  Frame child(const Frame& parent, QName q, const XML_Char** atts) {
    std::string_view l = q.local;
    switch (parent.node) {
      case Node::kSkip:
      case Node::kLeaf:
        return kSkipFrame;

      case Node::kEnvelope:
        if (q.ns == kSoapEnvNs) {
          if (l == "Body") {
            body_seen = true;
            return node(Node::kBody, nullptr);
          }
          if (l == "Header") return node(Node::kHeader, nullptr);
        }
        return kSkipFrame;

      case Node::kHeader:
        if (l == "ID") {
          if (!id_seen && starts_with(q.ns, kCwmpNsPrefix)) id_ns.assign(q.ns);
          id_seen = true;
          return leaf(Leaf::kOptTrim, &header.id);
        }
        if (l == "HoldRequests") return leaf(Leaf::kOptBool, &header.hold_requests);
        if (l == "NoMoreRequests") return leaf(Leaf::kBool, &header.no_more_requests);
        if (l == "SessionTimeout") return leaf(Leaf::kOptU32, &header.session_timeout);
        if (l == "SupportedCWMPVersions") return trimmed(header.supported_cwmp_versions);
        if (l == "UseCWMPVersion") return trimmed(header.use_cwmp_version);
        return kSkipFrame;

      case Node::kBody:
        if (body_children++ > 0) {
          stop("SOAP Body holds more than one element");
          return kSkipFrame;
        }
        return rpc_start(q);

      case Node::kRpc:
        return frames::rpc_child(body.index(), parent, l);

      case Node::kSoapFault: {
        auto& m = as<Fault>(parent);
        if (l == "faultcode") return leaf(Leaf::kFaultCode, &m.faultcode);
        if (l == "faultstring") return leaf(Leaf::kTrimNonEmpty, &m.faultstring);
        if (l == "detail") return node(Node::kDetail, &m);
        return kSkipFrame;
      }
      case Node::kDetail:
        if (l == "Fault") return node(Node::kCwmpFault, parent.obj);
        return kSkipFrame;
      case Node::kCwmpFault: {
        auto& m = as<Fault>(parent);
        if (l == "FaultCode") return leaf(Leaf::kU32, &m.code);
        if (l == "FaultString") return trimmed(m.string);
        if (l == "SetParameterValuesFault")
          return node(Node::kSpvFault, &push(m.set_parameter_values_faults));
        return kSkipFrame;
      }
      case Node::kSpvFault: {
        auto& m = as<SetParameterValuesFault>(parent);
        if (l == "ParameterName") return trimmed(m.name);
        if (l == "FaultCode") return leaf(Leaf::kU32, &m.code);
        if (l == "FaultString") return trimmed(m.string);
        return kSkipFrame;
      }

      case Node::kDeviceId: {
        auto& m = as<DeviceIdStruct>(parent);
        if (l == "Manufacturer") return trimmed(m.manufacturer);
        if (l == "OUI") return trimmed(m.oui);
        if (l == "ProductClass") return trimmed(m.product_class);
        if (l == "SerialNumber") return trimmed(m.serial_number);
        return kSkipFrame;
      }
      case Node::kEventList:
        return node(Node::kEvent, &push(as<std::vector<EventStruct>>(parent)));
      case Node::kEvent: {
        auto& m = as<EventStruct>(parent);
        if (l == "EventCode") return trimmed(m.code);
        if (l == "CommandKey") return trimmed(m.command_key);
        return kSkipFrame;
      }
      case Node::kPvList: {
        auto& list = as<std::vector<ParameterValue>>(parent);
        if (list.size() >= limits.max_inform_parameters && std::holds_alternative<Inform>(body)) {
          stop("an Inform with more than " + std::to_string(limits.max_inform_parameters) +
               " parameters");
          return kSkipFrame;
        }
        return node(Node::kPv, &push(list));
      }
      case Node::kPv: {
        auto& m = as<ParameterValue>(parent);
        if (l == "Name") return trimmed(m.name);
        if (l == "Value") {
          read_value_type(m.type, atts,
                          [this](std::string_view p) { return ns_of(p).value_or(""); });
          return leaf(Leaf::kRaw, &m.value);
        }
        return kSkipFrame;
      }
      case Node::kInfoList:
        return node(Node::kInfo, &push(as<std::vector<ParameterInfo>>(parent)));
      case Node::kInfo: {
        auto& m = as<ParameterInfo>(parent);
        if (l == "Name") return trimmed(m.name);
        if (l == "Writable") return leaf(Leaf::kBool, &m.writable);
        return kSkipFrame;
      }
      case Node::kAttrList:
        return node(Node::kAttr, &push(as<std::vector<ParameterAttribute>>(parent)));
      case Node::kAttr: {
        auto& m = as<ParameterAttribute>(parent);
        if (l == "Name") return trimmed(m.name);
        if (l == "Notification") return leaf(Leaf::kInt, &m.notification);
        if (l == "AccessList") return node(Node::kStringList, &m.access_list);
        return kSkipFrame;
      }
      case Node::kSetAttrList:
        return node(Node::kSetAttr, &push(as<std::vector<SetParameterAttributesStruct>>(parent)));
      case Node::kSetAttr: {
        auto& m = as<SetParameterAttributesStruct>(parent);
        if (l == "Name") return trimmed(m.name);
        if (l == "NotificationChange") return leaf(Leaf::kBool, &m.notification_change);
        if (l == "Notification") return leaf(Leaf::kInt, &m.notification);
        if (l == "AccessListChange") return leaf(Leaf::kBool, &m.access_list_change);
        if (l == "AccessList") return node(Node::kStringList, &m.access_list);
        return kSkipFrame;
      }
      case Node::kStringList:
        // Items are <string>, <ns5:string>, ... : any child counts.
        return trimmed(push(as<std::vector<std::string>>(parent)));
      case Node::kArgList:
        return node(Node::kArg,
                    &push(as<std::vector<std::pair<std::string, std::string>>>(parent)));
      case Node::kArg: {
        auto& m = as<std::pair<std::string, std::string>>(parent);
        if (l == "Name") return trimmed(m.first);
        if (l == "Value") return leaf(Leaf::kRaw, &m.second);
        return kSkipFrame;
      }
      case Node::kFaultStruct: {
        auto& m = as<FaultStruct>(parent);
        if (l == "FaultCode") return leaf(Leaf::kU32, &m.code);
        if (l == "FaultString") return trimmed(m.string);
        return kSkipFrame;
      }
      case Node::kOpList:
        return node(Node::kOp, &push(as<std::vector<OpResult>>(parent)));
      case Node::kOp: {
        auto& m = as<OpResult>(parent);
        if (l == "UUID") return trimmed(m.uuid);
        if (l == "DeploymentUnitRef") return trimmed(m.deployment_unit_ref);
        if (l == "Version") return trimmed(m.version);
        if (l == "CurrentState") return trimmed(m.current_state);
        if (l == "Resolved") return leaf(Leaf::kBool, &m.resolved);
        if (l == "ExecutionUnitRefList") return trimmed(m.execution_unit_ref_list);
        if (l == "StartTime") return trimmed(m.start_time);
        if (l == "CompleteTime") return trimmed(m.complete_time);
        if (l == "Fault") return node(Node::kFaultStruct, &m.fault);
        if (l == "OperationPerformed") return trimmed(m.operation_performed);
        return kSkipFrame;
      }
    }
    return kSkipFrame;
  }

  // The one element of the Body: a SOAP Fault, or an RPC matched by local
  // name in any namespace (or none).
  Frame rpc_start(QName q) {
    if (q.ns == kSoapEnvNs && q.local == "Fault") {
      return node(Node::kSoapFault, &body.emplace<Fault>());
    }
    if (starts_with(q.ns, kCwmpNsPrefix)) rpc_ns.assign(q.ns);
    for (const RpcEntry& e : rpc_table()) {
      if (e.name == q.local) {
        e.emplace(body);
        void* obj = std::visit([](auto& m) -> void* { return &m; }, body);
        return node(Node::kRpc, obj);
      }
    }
    body.emplace<Unknown>().name.assign(q.local);
    return kSkipFrame;
  }
};

Reader::Reader(ReaderLimits limits) : impl_(std::make_unique<Impl>(limits)) {
  impl_->reset({});
}

Reader::~Reader() = default;

void Reader::reset(std::string_view encoding) {
  impl_->reset(encoding);
}

void Reader::drop_document() {
  Impl& m = *impl_;
  if (m.grown()) {
    m.parser.reset(XML_ParserCreate(nullptr));
    if (!m.parser) throw std::bad_alloc();
    m.elements = m.attributes = m.ns_decls = 0;
    m.state = Impl::State::kFailed;  // no document until reset() sets the parser up
  }
  m.body = Empty{};
  m.header = Header{};
  m.stack.clear();
  if (m.text.capacity() > (1u << 20)) std::string().swap(m.text);
  if (m.held.capacity() > (1u << 20)) std::string().swap(m.held);
  m.text.clear();
  m.held.clear();
}

bool Reader::feed(const char* data, size_t len) {
  return impl_->feed(data, len);
}

bool Reader::finish(Envelope& out) {
  return impl_->finish(out);
}

const std::string& Reader::error() const {
  return impl_->error;
}

bool parse(std::string_view body, Envelope& out, std::string* error, std::string_view encoding) {
  thread_local Reader reader;
  reader.reset(encoding);
  bool ok = reader.feed(body.data(), body.size()) && reader.finish(out);
  if (!ok && error != nullptr) *error = reader.error();
  return ok;
}

}  // namespace luacs::soap
