// The real Erlang VM as the oracle of the tests: runs Erlang code with `erl -noshell` and reads
// what it prints, so that encodings can be compared with erlang:term_to_binary byte for byte.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace orion::erlang::testing {

// Evaluates Erlang expressions ("A = 1, io:format(...)", no final halt()) in a fresh VM and returns
// its standard output.  A crash or a non-zero exit fails the calling test.
std::string RunErlang(const std::string& expressions);

// term_to_binary(E, Options) of each expression, in one VM.
std::vector<std::vector<uint8_t>> TermToBinary(const std::vector<std::string>& expressions,
                                               std::string_view options = "[{minor_version, 2}]");

// Upper-case hex, as binary:encode_hex writes it, and back.
std::string Hex(std::span<const uint8_t> bytes);
std::vector<uint8_t> FromHex(std::string_view hex);

}  // namespace orion::erlang::testing
