// libFuzzer target for the DDSketch protobuf decoder (scripts/fuzz.sh): any input either fails
// with a Status or decodes to a sketch that answers quantiles and survives a re-encode with the
// same bins.  Memory stays bounded (DecodeOptions::max_bin_span; -rss_limit_mb in fuzz.sh).
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "sketch/ddsketch.h"
#include "sketch/encoding/base64.h"
#include "sketch/encoding/ddsketch_encoding.h"
#include "sketch/store/collapsing_dense_store.h"
#include "sketch/store/sparse_store.h"

namespace {

using orion::sketch::DDSketch;
using orion::sketch::DecodeDDSketch;
using orion::sketch::EncodeDDSketch;

template <typename S>
bool SameBins(const S& a, const S& b) {
  bool same = a.total_count() == b.total_count();
  a.for_each([&](int index, auto count) { same = same && b.count_at(index) == count; });
  return same;
}

template <typename S>
void CheckDecoded(std::span<const uint8_t> bytes, S store = S()) {
  const auto sketch = DecodeDDSketch<S>(bytes, store);
  if (!sketch.ok()) return;
  for (double q : {0.0, 0.25, 0.5, 0.99, 1.0}) {
    const auto value = sketch->quantile(q);
    if (value.ok() == sketch->empty()) std::abort();  // a quantile iff not empty
  }
  const auto again = DecodeDDSketch<S>(EncodeDDSketch(*sketch), store);
  if (!again.ok()) std::abort();
  if (!(again->mapping() == sketch->mapping())) std::abort();
  if (!SameBins(again->positive_store(), sketch->positive_store()) ||
      !SameBins(again->negative_store(), sketch->negative_store()) ||
      again->zero_count() != sketch->zero_count()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  CheckDecoded<orion::sketch::DenseStore<double>>(bytes);
  CheckDecoded<orion::sketch::DenseStore<uint64_t>>(bytes);
  CheckDecoded<orion::sketch::SparseStore<double>>(bytes);
  CheckDecoded<orion::sketch::CollapsingLowestDenseStore<uint64_t>>(
      bytes, orion::sketch::CollapsingLowestDenseStore<uint64_t>(64));
  // `orion sketch show` also reads base64 text.
  const auto text = std::string_view(reinterpret_cast<const char*>(data), size);
  if (orion::sketch::LooksLikeBase64(text)) {
    const auto decoded = orion::sketch::Base64Decode(text);
    if (decoded.ok()) CheckDecoded<orion::sketch::DenseStore<double>>(*decoded);
  }
  return 0;
}
