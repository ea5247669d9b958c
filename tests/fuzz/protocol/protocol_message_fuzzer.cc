// libFuzzer target for what the daemon does with bytes from the network (scripts/fuzz.sh): any
// input either fails with a Status or yields a gen_server call whose reply encodes and decodes;
// every term that decodes re-encodes canonically to an equal term, prints within its bound, and,
// read as a peer's capture reply, either fails or survives a re-encode.  Memory stays bounded by
// DecodeLimits and ProtocolLimits (-rss_limit_mb in fuzz.sh).
//
// corpus/: gen_server calls as OTP 25 sends them (term_to_binary of {'$gen_call', {Pid,
// [alias | Ref]}, Request} for every request, good and bad) and a capture reply written by
// EncodeCaptureReply.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "userspace/erlang/term.h"
#include "userspace/protocol/protocol.h"

namespace {

using namespace orion::protocol;
using namespace orion::erlang;

void Check(bool condition) {
  if (!condition) std::abort();
}

void CheckIncomingCall(std::span<const uint8_t> bytes, const ProtocolLimits& limits) {
  const auto in = ParseIncomingCall(bytes, limits);
  if (!in.ok()) return;
  const Term answer =
      in->request.ok() ? EncodePingReply() : EncodeErrorStatus(in->request.status());
  const auto reply_bytes = EncodeGenReply(in->call.tag, answer);
  const auto tag_bytes = in->call.tag.bytes();  // spliced in verbatim after 131, 104, 2
  Check(reply_bytes.size() > 3 + tag_bytes.size() &&
        std::equal(tag_bytes.begin(), tag_bytes.end(), reply_bytes.begin() + 3));
  const auto reply = DecodeTerm(reply_bytes, limits.decode);
  Check(reply.ok());
  const auto parsed = ParseGenReply(*reply);
  const auto tag = DecodeTermBody(tag_bytes, limits.decode);
  Check(parsed.ok() && parsed->reply == answer && tag.ok() && parsed->tag == *tag);
  if (in->request.ok()) {
    const auto again = ParseRequest(EncodeRequest(*in->request), limits);
    Check(again.ok() && *again == *in->request);
  }
}

void CheckTerm(std::span<const uint8_t> bytes, const ProtocolLimits& limits) {
  const auto term = DecodeTerm(bytes, limits.decode);
  if (!term.ok()) return;
  const auto encoded = EncodeTerm(*term);
  DecodeLimits roomy = limits.decode;
  roomy.max_bytes = 4 << 20;  // latin-1 atoms grow in UTF-8, old pids by 3 bytes
  const auto again = DecodeTerm(encoded, roomy);
  Check(again.ok() && *again == *term);
  Check(EncodeTerm(*again) == encoded);
  Check(FormatTerm(*term, 256).size() <= 256);

  const auto result = DecodeCaptureReply(*term, limits);
  if (!result.ok()) return;
  const auto decoded = DecodeCaptureReply(EncodeCaptureReply(*result), limits);
  Check(decoded.ok());
  Check(decoded->functions.size() == result->functions.size());
  for (size_t i = 0; i < result->functions.size(); ++i) {
    Check(decoded->functions[i].mfa == result->functions[i].mfa);
    Check(decoded->functions[i].wall.count() == result->functions[i].wall.count());
    Check(decoded->functions[i].cpu.count() == result->functions[i].cpu.count());
  }
  Check(decoded->duration_ms == result->duration_ms);
  const auto merged = MergeCaptureResults({*result, *decoded});
  Check(merged.ok() && merged->functions.size() == result->functions.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  const ProtocolLimits limits;
  CheckIncomingCall(bytes, limits);
  CheckTerm(bytes, limits);
  return 0;
}
