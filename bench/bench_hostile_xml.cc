// What hostile SOAP bodies cost the reader (issue 15): 4 MiB comments,
// attribute values, processing instructions, blanks inside a start tag and
// element names, fed in 16 KiB pieces as the network brings them; and a
// small document parsed after one that grew expat's tables.
//
//   ninja -C build/rel bench_hostile_xml && build/rel/bench/bench_hostile_xml
//
// Each case runs with the default limits (the token cap refuses it) and
// with a 16 MiB cap ("roomy": what parsing the whole of it costs). It
// compiles against readers without the cap too (the cap is then ignored),
// which is how the "before" column of bench/README.md was taken.
#include <benchmark/benchmark.h>

#include <string>

#include "core/soap/reader.h"

namespace {

using luacs::soap::Envelope;
using luacs::soap::Reader;
using luacs::soap::ReaderLimits;

template <typename L>
auto set_token_cap(L& l, size_t n, int) -> decltype(l.max_token_bytes = n, void()) {
  l.max_token_bytes = n;
}
template <typename L>
void set_token_cap(L&, size_t, long) {}

constexpr std::string_view kHead =
    "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Body>";
constexpr std::string_view kTail = "</soap-env:Body></soap-env:Envelope>";

std::string doc(int which) {
  const std::string big(4 << 20, 'x');
  std::string body;
  switch (which) {
    case 0:
      body = "<!--" + big + "-->";
      break;
    case 1:
      body = "<cwmp:GetRPCMethods a=\"" + big + "\"/>";
      break;
    case 2:
      body = "<?pi " + big + "?>";
      break;
    case 3:
      body = "<cwmp:GetRPCMethods" + std::string(4 << 20, ' ') + "/>";
      break;
    default:
      body = "<cwmp:" + big + "/>";
      break;
  }
  return std::string(kHead) + body + std::string(kTail);
}

const char* const kNames[] = {"comment", "attribute", "pi", "blanks_in_tag", "element_name"};

void BM_Hostile(benchmark::State& state) {
  const std::string d = doc(static_cast<int>(state.range(0)));
  ReaderLimits limits;
  if (state.range(1)) set_token_cap(limits, size_t{16} << 20, 0);
  Reader r(limits);
  Envelope env;
  for (auto _ : state) {
    r.reset();
    bool ok = true;
    for (size_t at = 0; ok && at < d.size(); at += 16384)
      ok = r.feed(std::string_view(d).substr(at, 16384));
    if (ok) r.finish(env);
  }
  state.SetLabel(std::string(kNames[state.range(0)]) + (state.range(1) ? " roomy" : " default"));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * d.size()));
}
BENCHMARK(BM_Hostile)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// A GetRPCMethods round's document, parsed after one document with 100,000
// distinct attribute names (state.range(0) = 1) or not (0).
void BM_AfterManyNames(benchmark::State& state) {
  ReaderLimits limits;
  set_token_cap(limits, size_t{16} << 20, 0);
  Reader r(limits);
  Envelope env;
  if (state.range(0)) {
    std::string attrs;
    for (int i = 0; i < 100'000; ++i) attrs += " a" + std::to_string(i) + "=\"1\"";
    const std::string poison =
        std::string(kHead) + "<cwmp:GetRPCMethods" + attrs + "/>" + std::string(kTail);
    r.reset();
    if (r.feed(poison)) r.finish(env);
  }
  const std::string small = std::string(kHead) + "<cwmp:GetRPCMethods/>" + std::string(kTail);
  for (auto _ : state) {
    r.reset();
    r.feed(small);
    r.finish(env);
  }
  state.SetLabel(state.range(0) ? "after 100,000 attribute names" : "clean");
}
BENCHMARK(BM_AfterManyNames)->Arg(0)->Arg(1);

}  // namespace
