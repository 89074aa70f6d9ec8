// Streaming SOAP reader: CWMP envelopes in, message values (message.h) out.
//
// One expat parser per Reader, created once and reset for every document, so
// a worker thread keeps one Reader and feeds it body pieces as they arrive
// (any split point works, even mid-tag or mid-UTF-8 sequence). No DOM is
// built: a small frame stack maps each element to the field it fills.
//
// Leniency (what real CPEs send, see ../shared/docs/cwmp-protocol.md §10):
// children of the RPC element are matched by local name only, names and other
// identifiers are trimmed, <Value> text (and Download/Upload credentials) is
// kept byte-exact, numbers accept zero padding and turn garbage into 0,
// booleans accept 1/true in any case, dateTimes are kept raw, arrayType
// counts are ignored. Strictness (what an attacker sends): no DTD or entity
// declarations, bounded depth, element count and text per element, root must
// be a SOAP 1.1 Envelope, and the Body holds at most one element.
//
// Cost linear in size (issue 15): expat re-scans an unfinished token from
// its start at every call, so a long comment or tag fed in pieces would
// cost the square of its length. The reader holds pieces back while a
// token is open until they double what expat holds (what expat 2.6 does by
// itself; Debian 12 has 2.5), and refuses a token longer than
// max_token_bytes. A parser that grew with a hostile document (many names,
// namespaces, elements) is replaced rather than reset, so nothing of it
// slows the next document down.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/soap/message.h"

namespace luacs::soap {

struct ReaderLimits {
  size_t max_depth = 32;               // element nesting
  size_t max_text_bytes = 256 * 1024;  // character data of one element
  size_t max_elements = 1'000'000;     // elements per document
  // Elements the reader does not know (vendor extensions, an RPC it does not
  // implement): skipped, but each distinct name grows expat's tables, the
  // costliest thing a document can ask for.
  size_t max_unknown_elements = 10'000;
  // An Inform carries its forced parameters and the values that changed:
  // tens. Thousands in one are an attack (the session's one turn handles
  // them all at once).
  size_t max_inform_parameters = 5'000;
  // One markup token still open (a tag with its attributes, a name, a
  // comment, a processing instruction, a reference): CWMP's are tens of
  // bytes.
  size_t max_token_bytes = 64 * 1024;
  size_t max_comment_bytes = 1024;  // comments and processing instructions
};

class Reader {
 public:
  explicit Reader(ReaderLimits limits = {});
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Starts a new document. `encoding` is the charset from the HTTP
  // Content-Type ("" = none): when expat supports it (UTF-8, UTF-16,
  // ISO-8859-1, US-ASCII, any case) it overrides the XML declaration. A UTF-8
  // byte order mark overrides both. Must be called between documents (the
  // constructor leaves the Reader ready for the first one).
  void reset(std::string_view encoding = {});
  // Lets go of what the last document left behind (a partly parsed body,
  // grown buffers) while the reader waits to be reused; reset() must come
  // before the next document.
  void drop_document();

  // Feeds the next piece of the body. Returns false on error; error() then
  // says why (with line:column for XML errors). After an error, every call
  // fails until reset().
  bool feed(const char* data, size_t len);
  bool feed(std::string_view data) { return feed(data.data(), data.size()); }

  // Ends the document and fills `out` (reusing its storage). A body that is
  // empty or only whitespace gives Envelope{.body = Empty{}} (the CWMP empty
  // POST).
  bool finish(Envelope& out);

  const std::string& error() const;

 private:
  struct Impl;  // parse state and the RAII-owned XML_Parser (reader.cc)
  std::unique_ptr<Impl> impl_;
};

// Convenience: one-shot parse with a per-thread Reader (default limits).
bool parse(std::string_view body, Envelope& out, std::string* error = nullptr,
           std::string_view encoding = {});

}  // namespace luacs::soap
