// SOAP hot paths: parsing each corpus Inform with one reused Reader (what a
// worker thread does per session), the large GetParameterNamesResponse, and
// writing the InformResponse every session sends.
//
//   ninja -C build bench_soap && build/bench/bench_soap
//
// Compare runs only from the same machine and build type (RelWithDebInfo,
// no sanitizers).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/soap/reader.h"
#include "core/soap/writer.h"

namespace {

using luacs::soap::Envelope;
using luacs::soap::Reader;

const std::string kCorpusDir = std::string(LUACS_SHARED_DIR) + "/corpus/cwmp/";

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void parse_loop(benchmark::State& state, const std::string& text) {
  Reader reader;
  Envelope env;
  for (auto _ : state) {
    reader.reset();
    bool ok = reader.feed(text.data(), text.size()) && reader.finish(env);
    if (!ok) {
      state.SkipWithError(reader.error().c_str());
      break;
    }
    benchmark::DoNotOptimize(env);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// One benchmark per corpus Inform, registered before main() runs.
const bool kRegistered = [] {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kCorpusDir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("inform-", 0) == 0 && e.path().extension() == ".xml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    std::string text = slurp(p);
    std::string name = "BM_ParseInform/" + p.stem().string();
    benchmark::RegisterBenchmark(name.c_str(),
                                 [text](benchmark::State& st) { parse_loop(st, text); });
  }
  std::string large = slurp(kCorpusDir + "getparameternamesresponse-tr098-thomson-st706-large.xml");
  benchmark::RegisterBenchmark("BM_ParseGetParameterNamesResponse3263",
                               [large](benchmark::State& st) { parse_loop(st, large); });
  return true;
}();

// The InformResponse, appended to a buffer that is reused (as the HTTP layer
// does with its response buffer).
void BM_WriteInformResponse(benchmark::State& state) {
  Envelope env;
  env.header.id = "1189711373";
  env.body = luacs::soap::InformResponse{};
  std::string out;
  for (auto _ : state) {
    out.clear();
    luacs::soap::write(out, env);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_WriteInformResponse);

// The same into a fresh string each time (allocation included).
void BM_WriteInformResponseFreshString(benchmark::State& state) {
  Envelope env;
  env.header.id = "1189711373";
  env.body = luacs::soap::InformResponse{};
  for (auto _ : state) {
    std::string out = luacs::soap::write(env);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_WriteInformResponseFreshString);

// An ACS request with a typical GetParameterValues batch (32 names).
void BM_WriteGetParameterValues32(benchmark::State& state) {
  Envelope env;
  env.header.id = "42";
  luacs::soap::GetParameterValues gpv;
  for (int i = 1; i <= 32; ++i)
    gpv.names.push_back("Device.IP.Interface." + std::to_string(i) + ".IPv4Address.1.IPAddress");
  env.body = gpv;
  std::string out;
  for (auto _ : state) {
    out.clear();
    luacs::soap::write(out, env);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_WriteGetParameterValues32);

}  // namespace
