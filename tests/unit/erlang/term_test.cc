#include "userspace/erlang/term.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tests/unit/erlang/erlang_vm.h"

namespace orion::erlang {
namespace {

using testing::Hex;
using testing::TermToBinary;

Term A(std::string_view name) {
  return Term::Atom(name);
}
Term I(int64_t value) {
  return Term::Integer(value);
}

std::string Repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Terms and the Erlang expressions that build the same terms.
struct Case {
  Term term;
  std::string erlang;
};

std::vector<Case> Cases() {
  std::vector<Term> tuple300(300, A("x"));
  std::vector<Term> list_bytes = {I(1), I(2), I(255)};
  return {
      {I(0), "0"},
      {I(255), "255"},
      {I(256), "256"},
      {I(-1), "-1"},
      {I(2147483647), "2147483647"},
      {I(-2147483648), "-2147483648"},
      {I(2147483648), "2147483648"},
      {I(-2147483649), "-2147483649"},
      {I(int64_t{1} << 40), "1 bsl 40"},
      {I(std::numeric_limits<int64_t>::max()), "(1 bsl 63) - 1"},
      {I(std::numeric_limits<int64_t>::min()), "-(1 bsl 63)"},
      {Term::Unsigned(uint64_t{1} << 63), "1 bsl 63"},
      {Term::Unsigned(UINT64_MAX), "(1 bsl 64) - 1"},
      {Term::Float(1.5), "1.5"},
      {Term::Float(-0.1), "-0.1"},
      {Term::Float(1e300), "1.0e300"},
      {A("abc"), "abc"},
      {A("$gen_call"), "'$gen_call'"},
      {A(""), "''"},
      {A("\xc3\xa9t\xc3\xa9"), "list_to_atom([233, $t, 233])"},
      {A("\xc5\x91"), "list_to_atom([16#151])"},
      {A(Repeat("\xc3\xa9", 200)), "list_to_atom(lists:duplicate(200, 233))"},  // ATOM_UTF8_EXT
      {Term::Binary(""), "<<>>"},
      {Term::Binary("hello"), "<<\"hello\">>"},
      {Term::Binary(std::string("\0\xff", 2)), "<<0, 255>>"},
      {Term::String("abc"), "\"abc\""},
      {Term::List(list_bytes), "[1, 2, 255]"},
      {Term::String(std::string(70000, 'a')), "lists:duplicate(70000, $a)"},
      {Term::List({I(1000)}), "[1000]"},
      {Term(), "[]"},
      {Term::List({I(1), A("a"), Term::Binary("b"), Term::List({})}), "[1, a, <<\"b\">>, []]"},
      {Term::ImproperList({A("a")}, A("b")), "[a | b]"},
      {Term::ImproperList({I(1), I(2)}, I(3)), "[1, 2 | 3]"},
      {Term::Tuple({}), "{}"},
      {Term::Tuple({A("ok"), Term::Tuple({I(1), Term::List({Term::Float(2.5)})})}),
       "{ok, {1, [2.5]}}"},
      {Term::Tuple(tuple300), "erlang:make_tuple(300, x)"},
      {Term::Map({}), "#{}"},
      {Term::Map({{A("a"), I(1)}, {A("b"), Term::List({I(2)})}}), "#{b => [2], a => 1}"},
      {Term::Map({{I(1), A("x")}, {A("a"), A("y")}, {Term::Binary("k"), A("z")}}),
       "#{<<\"k\">> => z, a => y, 1 => x}"},
      {Term::Pid({.node = "nonode@nohost", .id = 9, .serial = 0, .creation = 0}),
       "list_to_pid(\"<0.9.0>\")"},
      {Term::Reference({.node = "nonode@nohost", .creation = 0, .ids = {3, 2, 1}}),
       "list_to_ref(\"#Ref<0.1.2.3>\")"},
  };
}

TEST(TermTest, EncodesAsTermToBinaryDoes) {
  const auto cases = Cases();
  std::vector<std::string> expressions;
  for (const auto& c : cases) expressions.push_back(c.erlang);
  const auto expected = TermToBinary(expressions);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Hex(EncodeTerm(cases[i].term)), Hex(expected[i])) << cases[i].erlang;
  }
}

TEST(TermTest, DecodesTermToBinaryOfBothMinorVersions) {
  const auto cases = Cases();
  std::vector<std::string> expressions;
  for (const auto& c : cases) expressions.push_back(c.erlang);
  const auto v2 = TermToBinary(expressions);
  // minor_version 1 (OTP 25's default) writes latin-1 atoms as ATOM_EXT.
  const auto v1 = TermToBinary(expressions, "[{minor_version, 1}]");
  DecodeLimits roomy;  // for the 70000-character string
  roomy.max_elements = 100000;
  roomy.max_terms = 100000;
  for (const auto* encodings : {&v1, &v2}) {
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto decoded = DecodeTerm((*encodings)[i], roomy);
      ASSERT_TRUE(decoded.ok()) << cases[i].erlang << ": " << decoded.status().ToString();
      EXPECT_EQ(*decoded, cases[i].term)
          << cases[i].erlang << " decoded as " << FormatTerm(*decoded);
      EXPECT_EQ(Hex(EncodeTerm(*decoded)), Hex(v2[i])) << cases[i].erlang;
    }
  }
}

TEST(TermTest, ErlangDecodesWhatWeEncode) {
  const auto cases = Cases();
  std::string code = "R = [";
  for (size_t i = 0; i < cases.size(); ++i) {
    code += (i ? ", " : "") + std::string("binary_to_term(binary:decode_hex(<<\"") +
            Hex(EncodeTerm(cases[i].term)) + "\">>)) =:= (" + cases[i].erlang + ")";
  }
  code += "], io:format(\"~w\", [R])";
  std::string expected = "[";
  for (size_t i = 0; i < cases.size(); ++i) expected += i ? ",true" : "true";
  EXPECT_EQ(testing::RunErlang(code), expected + "]");
}

TEST(TermTest, EveryKindRoundTrips) {
  std::vector<Term> terms;
  for (const auto& c : Cases()) terms.push_back(c.term);
  terms.push_back(Term::Map({{Term::Tuple({A("k")}), Term::Map({{A("inner"), Term::String("v")}})},
                             {Term::List({I(-5)}), Term::Float(0.0)}}));
  terms.push_back(Term::Reference({.node = "a@b", .creation = 7, .ids = {1, 2, 3, 4, 5}}));
  terms.push_back(Term::Pid({.node = "orion@h", .id = 1, .serial = 2, .creation = 0xFFFFFFFF}));
  DecodeLimits roomy;  // for the 70000-character string
  roomy.max_elements = 100000;
  roomy.max_terms = 100000;
  for (const Term& term : terms) {
    const auto bytes = EncodeTerm(term);
    const auto decoded = DecodeTerm(bytes, roomy);
    ASSERT_TRUE(decoded.ok()) << FormatTerm(term) << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, term) << FormatTerm(term);
    EXPECT_EQ(Hex(decoded->encoded()), Hex(EncodeTermBody(term)));
    const auto body = DecodeTermBody(EncodeTermBody(term), roomy);
    ASSERT_TRUE(body.ok());
    EXPECT_EQ(*body, term);
  }
}

TEST(TermTest, IntegersKeepTheirRange) {
  const auto u = DecodeTerm(EncodeTerm(Term::Unsigned(UINT64_MAX)), DecodeLimits{});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->to_uint64(), UINT64_MAX);
  EXPECT_EQ(u->to_int64(), std::nullopt);
  const auto m = DecodeTerm(EncodeTerm(I(std::numeric_limits<int64_t>::min())), DecodeLimits{});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->to_int64(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(m->to_uint64(), std::nullopt);
  // Zero-padded and negative-zero bigs decode as binary_to_term decodes them.
  const auto padded =
      DecodeTerm(std::vector<uint8_t>{131, 110, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, DecodeLimits{});
  ASSERT_TRUE(padded.ok());
  EXPECT_EQ(*padded, I(1));
  const auto zero = DecodeTerm(std::vector<uint8_t>{131, 110, 1, 1, 0}, DecodeLimits{});
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(*zero, I(0));
  EXPECT_EQ(Hex(EncodeTerm(*zero)), "836100");
}

TEST(TermTest, SubTermsKeepTheirSourceBytes) {
  // {'$gen_call', {Pid, [alias | Ref]}, {ping}} as OTP 25 writes it by default: ATOM_EXT atoms.
  const auto bytes = TermToBinary(
      {"{'$gen_call', {list_to_pid(\"<0.9.0>\"), [alias | list_to_ref(\"#Ref<0.1.2.3>\")]}, "
       "{ping}}"},
      "[{minor_version, 1}]")[0];
  const auto message = DecodeTerm(bytes, DecodeLimits{});
  ASSERT_TRUE(message.ok()) << message.status().ToString();
  const Term& tag = message->elements()[1].elements()[1];
  const auto expected_tag =
      TermToBinary({"[alias | list_to_ref(\"#Ref<0.1.2.3>\")]"}, "[{minor_version, 1}]")[0];
  EXPECT_EQ(Hex(tag.encoded()), Hex(std::span(expected_tag).subspan(1)));
  // As a Raw term the tag is spliced in verbatim (ATOM_EXT kept), not re-encoded.
  const Term raw = tag.AsRaw();
  EXPECT_EQ(raw.kind(), TermKind::kRaw);
  const auto reply = EncodeTerm(Term::Tuple({raw, A("ok")}));
  const std::vector<uint8_t> head = {131, 104, 2};
  std::vector<uint8_t> expected(head);
  expected.insert(expected.end(), expected_tag.begin() + 1, expected_tag.end());
  expected.insert(expected.end(), {119, 2, 'o', 'k'});
  EXPECT_EQ(Hex(reply), Hex(expected));
  // A built term has no source; AsRaw encodes it.
  EXPECT_TRUE(A("x").encoded().empty());
  EXPECT_EQ(Hex(A("x").AsRaw().bytes()), "7701" + Hex(std::vector<uint8_t>{'x'}));
}

TEST(TermTest, ListTailsFlattenWithoutRecursion) {
  // [0 | [1 | [2 | ... []]]] as a chain of one-element LIST_EXT cells, 4000 deep.
  std::vector<uint8_t> bytes = {131};
  for (int i = 0; i < 4000; ++i) {
    bytes.insert(bytes.end(), {108, 0, 0, 0, 1, 97, static_cast<uint8_t>(i % 200)});
  }
  bytes.push_back(106);
  const auto list = DecodeTerm(bytes, DecodeLimits{});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->elements().size(), 4000u);
  EXPECT_EQ(list->tail(), nullptr);
  // A STRING_EXT tail is flattened too: [a | "bc"] = [a, 98, 99].
  const auto mixed = DecodeTerm(
      std::vector<uint8_t>{131, 108, 0, 0, 0, 1, 119, 1, 'a', 107, 0, 2, 'b', 'c'}, DecodeLimits{});
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  EXPECT_EQ(*mixed, Term::List({A("a"), I('b'), I('c')}));
  EXPECT_EQ(Term::ImproperList({A("a")}, Term::String("bc")), *mixed);
}

TEST(TermTest, EveryTruncationFailsCleanly) {
  const Term term = Term::Tuple(
      {A("$gen_call"),
       Term::Tuple(
           {Term::Pid({.node = "a@b", .id = 1}),
            Term::ImproperList({A("alias")}, Term::Reference({.node = "a@b", .ids = {1, 2, 3}}))}),
       Term::Tuple({A("capture"),
                    Term::Map({{A("patterns"),
                                Term::List({Term::Binary("lists:sort/1"), Term::String("ets")})},
                               {A("duration_ms"), I(5000)},
                               {A("big"), Term::Unsigned(UINT64_MAX)},
                               {A("f"), Term::Float(1.5)}})})});
  const auto bytes = EncodeTerm(term);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const auto decoded = DecodeTerm(std::span(bytes).first(n), DecodeLimits{});
    ASSERT_FALSE(decoded.ok()) << "prefix of " << n << " bytes";
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(decoded.status().message().rfind("byte ", 0), 0u) << decoded.status().message();
  }
  auto longer = bytes;
  longer.push_back(0);
  const auto trailing = DecodeTerm(longer, DecodeLimits{});
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.status().message(),
            "byte " + std::to_string(bytes.size()) + ": 1 byte(s) after the end of the term");
}

// n tuples {{...{x}...}} (or lists) nested in one another.
Term Nested(int n, bool lists) {
  Term term = A("x");
  for (int i = 0; i < n; ++i) term = lists ? Term::List({term}) : Term::Tuple({term});
  return term;
}

TEST(TermTest, NestingIsBoundedBeforeRecursing) {
  EXPECT_TRUE(DecodeTerm(EncodeTerm(Nested(32, false)), DecodeLimits{}).ok());
  EXPECT_TRUE(DecodeTerm(EncodeTerm(Nested(32, true)), DecodeLimits{}).ok());
  // The 33rd tuple starts at byte 1 + 32 * 2 (SMALL_TUPLE_EXT, arity).
  auto deep = DecodeTerm(EncodeTerm(Nested(33, false)), DecodeLimits{});
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "byte 65: nesting deeper than 32");
  // Lists: LIST_EXT, a 4-byte length, then the element; the 33rd starts at 1 + 32 * 5.
  deep = DecodeTerm(EncodeTerm(Nested(33, true)), DecodeLimits{});
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "byte 161: nesting deeper than 32");
  // A million nested tuples: refused at the limit, no stack overflow.
  std::vector<uint8_t> bytes = {131};
  for (int i = 0; i < 1000000; ++i) bytes.insert(bytes.end(), {104, 1});
  bytes.push_back(106);
  DecodeLimits limits;
  limits.max_bytes = 4 << 20;
  deep = DecodeTerm(bytes, limits);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "byte 65: nesting deeper than 32");
}

TEST(TermTest, SizeLimitsSayWhatAndWhere) {
  const auto error = [](const std::vector<uint8_t>& bytes, const DecodeLimits& limits = {}) {
    const auto decoded = DecodeTerm(bytes, limits);
    return decoded.ok() ? std::string("ok") : decoded.status().message();
  };
  // Elements per container.
  EXPECT_EQ(error(EncodeTerm(Term::Tuple(std::vector<Term>(4097, I(1))))),
            "byte 1: tuple of 4097 elements (at most 4096)");
  EXPECT_EQ(error(EncodeTerm(Term::List(std::vector<Term>(4097, A("a"))))),
            "byte 1: list of 4097 elements (at most 4096)");
  EXPECT_EQ(error(EncodeTerm(Term::Tuple(std::vector<Term>(4096, I(1))))), "ok");
  // Hostile counts: refused before anything is allocated.
  EXPECT_EQ(error({131, 108, 0xFF, 0xFF, 0xFF, 0xFF, 106}),
            "byte 1: list of 4294967295 elements (at most 4096)");
  EXPECT_EQ(error({131, 116, 0xFF, 0xFF, 0xFF, 0xFF}),
            "byte 1: map of 4294967295 elements (at most 4096)");
  DecodeLimits unbounded;
  unbounded.max_elements = UINT32_MAX;
  EXPECT_EQ(error({131, 105, 0xFF, 0xFF, 0xFF, 0xFF, 106}, unbounded),
            "byte 1: input ends inside a tuple of 4294967295 elements (4294967295 bytes needed at "
            "least, 1 left)");
  EXPECT_EQ(error({131, 109, 0xFF, 0xFF, 0xFF, 0xFF, 1}),
            "byte 1: binary of 4294967295 bytes (at most 1048576)");
  // Terms in the whole input.
  DecodeLimits few;
  few.max_terms = 10;
  EXPECT_EQ(error(EncodeTerm(Term::Tuple({Term::List(std::vector<Term>(5, A("a"))),
                                          Term::List(std::vector<Term>(5, A("b")))})),
                  few),
            "byte 35: more than 10 terms");
  // Bytes.
  DecodeLimits small;
  small.max_bytes = 8;
  EXPECT_EQ(error(EncodeTerm(Term::Binary("0123456789")), small),
            "byte 0: input of 16 bytes (at most 8)");
  small.max_bytes = 1 << 20;
  small.max_binary_bytes = 4;
  EXPECT_EQ(error(EncodeTerm(Term::Binary("01234")), small),
            "byte 1: binary of 5 bytes (at most 4)");
  EXPECT_EQ(error(EncodeTerm(Term::String("01234")), small),
            "byte 1: string of 5 bytes (at most 4)");
  // Atoms: at most 255 characters, in UTF-8 (not bytes).
  const std::string long_atom = Repeat("\xc3\xa9", 255);
  EXPECT_EQ(error(EncodeTerm(A(long_atom))), "ok");
  EXPECT_EQ(error(EncodeTerm(A(long_atom + "x"))), "byte 1: atom of 256 characters (at most 255)");
}

TEST(TermTest, RejectsWhatTheDaemonMustNotAccept) {
  const auto error = [](std::string_view erlang) {
    const auto bytes = TermToBinary({std::string(erlang)})[0];
    const auto decoded = DecodeTerm(bytes, DecodeLimits{});
    return decoded.ok() ? std::string("ok") : decoded.status().message();
  };
  EXPECT_EQ(error("fun() -> ok end"),
            "byte 1: funs are not accepted (the daemon runs no code it is sent) (tag 112)");
  EXPECT_EQ(error("fun lists:sort/1"),
            "byte 1: funs are not accepted (the daemon runs no code it is sent) (tag 113)");
  EXPECT_EQ(error("{ok, <<1:3>>}"), "byte 7: bitstrings are not accepted (tag 77)");
  EXPECT_EQ(error("1 bsl 64"), "byte 1: integer wider than 64 bits");
  EXPECT_EQ(error("-(1 bsl 63) - 1"), "byte 1: integer below -2^63");
  const auto compressed = TermToBinary({"lists:duplicate(100, a)"}, "[compressed]")[0];
  EXPECT_EQ(DecodeTerm(compressed, DecodeLimits{}).status().message(),
            "byte 1: compressed terms are not accepted (tag 80)");

  const auto raw_error = [](std::vector<uint8_t> bytes) {
    const auto decoded = DecodeTerm(bytes, DecodeLimits{});
    return decoded.ok() ? std::string("ok") : decoded.status().message();
  };
  EXPECT_EQ(raw_error({131, 82, 0}), "byte 1: atom cache references are not accepted (tag 82)");
  EXPECT_EQ(raw_error({131, 70, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0}), "byte 1: not a finite float");
  EXPECT_EQ(raw_error({131, 119, 2, 0xFF, 0xFF}), "byte 1: atom is not valid UTF-8");
  EXPECT_EQ(raw_error({131, 119, 2, 0xC0, 0x80}), "byte 1: atom is not valid UTF-8");  // overlong
  EXPECT_EQ(raw_error({131, 200}), "byte 1: unknown term tag (tag 200)");
  EXPECT_EQ(raw_error({130, 106}), "byte 0: expected the version byte 131, not 130");
  EXPECT_EQ(raw_error({}), "byte 0: input ends inside the version byte (1 byte(s) needed, 0 left)");
  EXPECT_EQ(raw_error({131, 90, 0, 6, 119, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                       2,   0,  0, 0, 3,   0, 0,   0, 4, 0, 0, 0, 5, 0, 0, 0, 6}),
            "byte 1: reference of 6 words (1 to 5)");
  EXPECT_EQ(raw_error({131, 88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}),
            "byte 2: the node of a pid must be an atom (tag 97)");
  EXPECT_EQ(raw_error({131, 108, 0, 0, 0, 0, 119, 1, 'a'}),
            "byte 6: a list with no elements before its tail");
  // Duplicate keys, also when written differently (ATOM_EXT and SMALL_ATOM_UTF8_EXT 'a').
  EXPECT_EQ(raw_error({131, 116, 0, 0, 0, 2, 119, 1, 'a', 97, 1, 100, 0, 1, 'a', 97, 2}),
            "byte 1: map has the key a twice");
  EXPECT_EQ(raw_error({131, 116, 0, 0, 0, 2, 107, 0,   1,   'a', 97,
                       1,   108, 0, 0, 0, 1, 97,  'a', 106, 97,  2}),
            "byte 1: map has the key \"a\" twice");
}

TEST(TermTest, LatinOneAtomsBecomeUtf8) {
  const auto decoded = DecodeTerm(std::vector<uint8_t>{131, 100, 0, 2, 0xE9, 't'}, DecodeLimits{});
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->text(), "\xc3\xa9t");
  EXPECT_EQ(Hex(EncodeTerm(*decoded)), "837703C3A974");
}

TEST(TermTest, EqualityIsErlangsExactEquality) {
  EXPECT_EQ(Term::String("ab"), Term::List({I('a'), I('b')}));
  EXPECT_NE(Term::String("ab"), Term::ImproperList({I('a')}, I('b')));
  EXPECT_EQ(Term::String(""), Term());
  EXPECT_EQ(Term::Map({{A("a"), I(1)}, {A("b"), I(2)}}),
            Term::Map({{A("b"), I(2)}, {A("a"), I(1)}}));
  EXPECT_NE(Term::Map({{A("a"), I(1)}}), Term::Map({{A("a"), I(2)}}));
  EXPECT_NE(I(1), Term::Float(1.0));
  EXPECT_NE(A("a"), Term::Binary("a"));
  EXPECT_EQ(Term::Unsigned(5), I(5));
  EXPECT_NE(Term::Tuple({A("a")}), Term::List({A("a")}));
}

TEST(TermTest, FormatsInErlangSyntax) {
  EXPECT_EQ(FormatTerm(Term::Tuple(
                {A("capture"), Term::Map({{A("duration_ms"), I(5000)},
                                          {A("patterns"), Term::List({Term::Binary("lists:sort/1"),
                                                                      Term::String("ets")})}})})),
            "{capture,#{duration_ms => 5000,patterns => [<<\"lists:sort/1\">>,\"ets\"]}}");
  EXPECT_EQ(FormatTerm(Term::List(
                {A("$gen_call"), A("Elixir.Foo"), A("orion@host"), A("end"), A("it's")})),
            "['$gen_call','Elixir.Foo',orion@host,'end','it\\'s']");
  EXPECT_EQ(FormatTerm(Term::ImproperList({I(-3), Term::Float(1.5)}, Term::Float(1e10))),
            "[-3,1.5|1.0e10]");
  EXPECT_EQ(FormatTerm(Term::List({Term::Float(0.1), Term::Float(2), Term::Float(1.5e-7)})),
            "[0.1,2.0,1.5e-7]");
  EXPECT_EQ(FormatTerm(Term::Tuple({Term::Binary(std::string("\x01\xff", 2)), Term::String("\x01"),
                                    Term::Unsigned(UINT64_MAX)})),
            "{<<1,255>>,[1],18446744073709551615}");
  EXPECT_EQ(FormatTerm(Term::Tuple({Term::Pid({.node = "a@b", .id = 9, .serial = 1}),
                                    Term::Reference({.node = "a@b", .ids = {3, 2, 1}})})),
            "{#Pid<a@b.9.1>,#Ref<a@b.1.2.3>}");
  // A Raw term prints as the term it encodes.
  EXPECT_EQ(FormatTerm(Term::Tuple({A("x")}).AsRaw()), "{x}");
  const std::string cut = FormatTerm(Term::List(std::vector<Term>(1000, I(12345))), 40);
  EXPECT_EQ(cut.size(), 40u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  EXPECT_EQ(cut.rfind("[12345,12345,", 0), 0u);
}

}  // namespace
}  // namespace orion::erlang
