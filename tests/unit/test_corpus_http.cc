// The raw HTTP requests of the corpus through the HTTP layer, their bodies
// streamed into the SOAP reader exactly as a connection does it, checked for
// the values they carry.
#include <gtest/gtest.h>

#include "core/http/cookie.h"
#include "core/http/request_parser.h"
#include "core/soap/reader.h"
#include "support/cpe_client.h"

using namespace luacs;

namespace {

struct Parsed {
  http::Request request;
  soap::Envelope envelope;
};

// Feeds `raw` to the parser in pieces of `step` bytes; the body goes to the
// reader as it is decoded.
Parsed parse_http(const std::string& raw, size_t step) {
  struct Sink : http::BodySink {
    soap::Reader reader;
    bool on_body(const char* d, size_t n) override { return reader.feed(d, n); }
  } sink;
  http::RequestParser parser;
  Parsed out;
  size_t off = 0;
  bool head = false, done = false;
  while (!done) {
    size_t len = std::min(step, raw.size() - off);
    size_t used = 0;
    auto ev = parser.feed(raw.data() + off, len, &used, &sink);
    off += used;
    switch (ev) {
      case http::RequestParser::Event::kHeadersComplete:
        head = true;
        sink.reader.reset(parser.request().charset);
        break;
      case http::RequestParser::Event::kMessageComplete:
        done = true;
        break;
      case http::RequestParser::Event::kError:
        ADD_FAILURE() << parser.error().reason << " / " << sink.reader.error();
        return out;
      case http::RequestParser::Event::kNeedMore:
        if (off >= raw.size()) {
          ADD_FAILURE() << "request incomplete";
          return out;
        }
        break;
    }
  }
  EXPECT_TRUE(head);
  EXPECT_TRUE(sink.reader.finish(out.envelope)) << sink.reader.error();
  out.request = parser.request();
  return out;
}

class CorpusHttp : public ::testing::TestWithParam<size_t> {
 protected:
  Parsed parse(const std::string& name) { return parse_http(test::corpus_file(name), GetParam()); }
};

}  // namespace

TEST_P(CorpusHttp, ThomsonSt706Inform) {
  Parsed p = parse("inform-tr098-thomson-st706-periodic-nomorerequests.http");
  EXPECT_EQ(p.request.charset, "ISO-8859-1");
  const auto& in = std::get<soap::Inform>(p.envelope.body);
  EXPECT_EQ(in.device_id.oui, "00147F");
  EXPECT_EQ(in.device_id.product_class, "SpeedTouch 706");
  EXPECT_EQ(in.device_id.serial_number, "CP0636JT3SH");
  ASSERT_EQ(in.events.size(), 1u);
  EXPECT_EQ(in.events[0].code, "2 PERIODIC");
  EXPECT_EQ(p.envelope.header.id, "THOM_CPE_ALC_ID_9");
  EXPECT_TRUE(p.envelope.header.no_more_requests);
  EXPECT_EQ(in.parameters.at(0).name, "InternetGatewayDevice.DeviceInfo.SpecVersion");
  EXPECT_EQ(in.parameters.at(1).value, "BANT-S");
}

TEST_P(CorpusHttp, ThomsonSt780ChunkedInform) {
  Parsed p = parse("inform-tr098-thomson-st780-periodic-chunked.http");
  EXPECT_TRUE(p.request.chunked);
  const auto& in = std::get<soap::Inform>(p.envelope.body);
  EXPECT_EQ(p.envelope.header.id, "14_THOM_TR69_ID");
  EXPECT_EQ(in.device_id.serial_number, "CP0644JTHJ4");
  EXPECT_EQ(in.max_envelopes, 2u);
  EXPECT_EQ(in.parameters.size(), 12u);
  EXPECT_EQ(in.parameters[0].name, "InternetGatewayDevice.DeviceSummary");
}

TEST_P(CorpusHttp, ThomsonResponsesWithRfc2965Cookies) {
  Parsed gpv = parse("getparametervaluesresponse-tr098-thomson-bantr.http");
  EXPECT_EQ(http::find_cookie(gpv.request.header("Cookie"), "ID"), "218_THOM_TR69_ID");
  const auto& values = std::get<soap::GetParameterValuesResponse>(gpv.envelope.body).parameters;
  ASSERT_GE(values.size(), 4u);
  EXPECT_EQ(values[0].name, "InternetGatewayDevice.DeviceInfo.VendorConfigFile.1.Name");
  EXPECT_EQ(values[0].value, "Routed PPPoE on 8/35");
  EXPECT_EQ(values[2].type, "dateTime");
  EXPECT_EQ(values[2].value, "0001-01-01T00:00:00Z");

  Parsed gpn = parse("getparameternamesresponse-tr098-thomson-bantr.http");
  const auto& names = std::get<soap::GetParameterNamesResponse>(gpn.envelope.body).parameters;
  EXPECT_EQ(names.size(), 18u);

  Parsed gpa = parse("getparameterattributesresponse-tr098-thomson-bantr.http");
  const auto& attrs = std::get<soap::GetParameterAttributesResponse>(gpa.envelope.body).parameters;
  ASSERT_FALSE(attrs.empty());
  EXPECT_EQ(attrs[0].name, "InternetGatewayDevice.DeviceInfo.SerialNumber");
  EXPECT_EQ(attrs[0].notification, 0);
  EXPECT_EQ(attrs[0].access_list, std::vector<std::string>{"subscriber"});

  Parsed rpc = parse("getrpcmethodsresponse-tr098-thomson-bantr.http");
  const auto& methods = std::get<soap::GetRPCMethodsResponse>(rpc.envelope.body).methods;
  ASSERT_EQ(methods.size(), 11u);
  EXPECT_EQ(methods[0], "GetRPCMethods");
}

TEST_P(CorpusHttp, ThomsonFaults) {
  Parsed f9000 = parse("fault-9000-method-not-supported-thomson-bants.http");
  EXPECT_EQ(std::get<soap::Fault>(f9000.envelope.body).code, 9000u);
  EXPECT_EQ(http::find_cookie(f9000.request.header("Cookie"), "ID"), "THOM_CPE_ALC_ID_392");
  Parsed f9001 = parse("fault-9001-request-denied-thomson-bantr.http");
  const auto& f = std::get<soap::Fault>(f9001.envelope.body);
  EXPECT_EQ(f.code, 9001u);
  EXPECT_EQ(f.string, "Request Denied");
  EXPECT_EQ(f.faultcode, "Client");
}

TEST_P(CorpusHttp, EmptyPosts) {
  for (const char* name : {"http-cpe-empty-post-content-length-0.http",
                           "http-cpe-empty-post-no-content-length.http"}) {
    SCOPED_TRACE(name);
    Parsed p = parse(name);
    EXPECT_TRUE(std::holds_alternative<soap::Empty>(p.envelope.body));
    EXPECT_EQ(http::find_cookie(p.request.header("Cookie"), "session"), "6b0f4c2e9a7d1e35");
    EXPECT_EQ(p.request.target, "/cwmp");
  }
}

// Every POST in the corpus, whole and byte by byte.
INSTANTIATE_TEST_SUITE_P(Pieces, CorpusHttp,
                         ::testing::Values(size_t{1}, size_t{7}, size_t{1} << 20));
