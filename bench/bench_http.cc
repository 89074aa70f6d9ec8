// HTTP request parsing: a ~3 KB Inform POST framed by Content-Length, the
// same chunked (the real Thomson capture), gzip-compressed, and delivered in
// TCP-segment-sized pieces. One parser, reset() between requests, as a
// keep-alive connection uses it.
//
// BM_Baseline_FindHeadAndCopy is the floor to compare with in the same run:
// find the blank line with memmem and copy the body, with no parsing at all.
//
//   ./build/bench/bench_http --benchmark_min_time=1
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/http/request_parser.h"

namespace {

using luacs::http::BodySink;
using luacs::http::RequestParser;

std::string ReadCorpus(const char* name) {
  std::string path = std::string(LUACS_SHARED_DIR) + "/corpus/cwmp/" + name;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open " + path);
  std::string out;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

std::string Gzip(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Head(size_t length, const char* extra = "") {
  return std::string(
             "POST /cwmp HTTP/1.1\r\n"
             "Host: acs.example.net:7547\r\n"
             "User-Agent: Thomson_cwmp-engine/r6.2.15.5\r\n"
             "Content-Type: text/xml; charset=ISO-8859-1\r\n"
             "SOAPAction:\r\n"
             "Cookie: $Version=\"0\"; ID=218_THOM_TR69_ID;$Path=/\r\n") +
         extra + "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

// A realistic sink: the SOAP reader gets the body appended to a reused string.
struct AppendSink : BodySink {
  std::string body;
  bool on_body(const char* data, size_t len) override {
    body.append(data, len);
    return true;
  }
};

void ParseLoop(benchmark::State& state, const std::string& msg, size_t segment) {
  RequestParser parser;
  AppendSink sink;
  sink.body.reserve(64 * 1024);
  for (auto _ : state) {
    parser.reset();
    sink.body.clear();
    size_t pos = 0;
    RequestParser::Event ev = RequestParser::Event::kNeedMore;
    while (pos < msg.size() || ev == RequestParser::Event::kHeadersComplete) {
      size_t piece = std::min(segment, msg.size() - pos);
      size_t consumed = 0;
      ev = parser.feed(msg.data() + pos, piece, &consumed, &sink);
      pos += consumed;
      if (ev == RequestParser::Event::kMessageComplete || ev == RequestParser::Event::kError) break;
    }
    if (ev != RequestParser::Event::kMessageComplete) {
      state.SkipWithError(parser.error().reason.c_str());
      break;
    }
    benchmark::DoNotOptimize(sink.body.data());
    benchmark::DoNotOptimize(parser.request().headers.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
  state.counters["msg_bytes"] = static_cast<double>(msg.size());
}

// The floor: locate "\r\n\r\n" and copy what follows into the sink, as a
// parser that read nothing but a known Content-Length would.
void BM_Baseline_FindHeadAndCopy(benchmark::State& state);

const std::string& InformBody() {
  static const std::string body =
      ReadCorpus("inform-tr098-thomson-st780-boot-periodic-valuechange.xml");
  return body;
}

void BM_ContentLength(benchmark::State& state) {
  const std::string msg = Head(InformBody().size()) + InformBody();
  ParseLoop(state, msg, SIZE_MAX);
}
BENCHMARK(BM_ContentLength);

void BM_Baseline_FindHeadAndCopy(benchmark::State& state) {
  const std::string msg = Head(InformBody().size()) + InformBody();
  AppendSink sink;
  sink.body.reserve(64 * 1024);
  for (auto _ : state) {
    sink.body.clear();
    const void* end = memmem(msg.data(), msg.size(), "\r\n\r\n", 4);
    size_t head = static_cast<size_t>(static_cast<const char*>(end) - msg.data()) + 4;
    sink.on_body(msg.data() + head, msg.size() - head);
    benchmark::DoNotOptimize(sink.body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}
BENCHMARK(BM_Baseline_FindHeadAndCopy);

void BM_ContentLengthSegments(benchmark::State& state) {
  const std::string msg = Head(InformBody().size()) + InformBody();
  ParseLoop(state, msg, static_cast<size_t>(state.range(0)));
}
BENCHMARK(BM_ContentLengthSegments)->Arg(1448)->Arg(536);

void BM_Chunked(benchmark::State& state) {
  ParseLoop(state, ReadCorpus("inform-tr098-thomson-st780-periodic-chunked.http"), SIZE_MAX);
}
BENCHMARK(BM_Chunked);

void BM_ChunkedSegments(benchmark::State& state) {
  ParseLoop(state, ReadCorpus("inform-tr098-thomson-st780-periodic-chunked.http"),
            static_cast<size_t>(state.range(0)));
}
BENCHMARK(BM_ChunkedSegments)->Arg(1448);

void BM_Gzip(benchmark::State& state) {
  const std::string gz = Gzip(InformBody());
  const std::string msg = Head(gz.size(), "Content-Encoding: gzip\r\n") + gz;
  ParseLoop(state, msg, SIZE_MAX);
}
BENCHMARK(BM_Gzip);

}  // namespace
