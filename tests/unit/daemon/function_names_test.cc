// What {functions, Prefix} completes to (userspace/daemon/function_names.h), given the modules
// and exports a BEAM lists. The rpcs themselves are tested through a real daemon and real nodes
// (tests/integration/functions_bpf_test.cc).
#include "userspace/daemon/function_names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "userspace/probes/mfa_pattern.h"

namespace orion::daemon {
namespace {

using Names = std::vector<std::string>;

const std::vector<std::string> kLoaded = {"lists",       "lists_extra", "ets",
                                          "Elixir.Enum", "Elixir.Enum.EmptyError",
                                          "Elixir.Enumerable", "a b"};

TEST(FunctionNamesTest, APrefixWithoutASeparatorCompletesModuleNamesOnly) {
  const CompletionPlan lis = PlanCompletion("lis", kLoaded);
  EXPECT_EQ(lis.module_names, (Names{"lists:", "lists_extra:"}));
  EXPECT_TRUE(lis.modules_to_list.empty()) << "no module_info per keystroke on a module prefix";

  const CompletionPlan enu = PlanCompletion("Enu", kLoaded);
  EXPECT_EQ(enu.module_names, (Names{"Enum.", "Enum.EmptyError.", "Enumerable."}));
  EXPECT_TRUE(enu.modules_to_list.empty());

  // Elixir's name for an Erlang module, and the BEAM's own form of an Elixir one.
  EXPECT_EQ(PlanCompletion(":li", kLoaded).module_names, (Names{":lists.", ":lists_extra."}));
  EXPECT_EQ(PlanCompletion("'Elixir.Enum'", kLoaded).module_names, (Names{"'Elixir.Enum':"}));
  EXPECT_EQ(PlanCompletion("'a", kLoaded).module_names, (Names{"'a b':"}));
  EXPECT_TRUE(PlanCompletion("zz", kLoaded).module_names.empty());
}

TEST(FunctionNamesTest, AWholeModuleAndItsSeparatorCompletesItsFunctions) {
  EXPECT_EQ(PlanCompletion("lists:so", kLoaded).modules_to_list, (Names{"lists"}));
  EXPECT_EQ(PlanCompletion("lists:", kLoaded).modules_to_list, (Names{"lists"}));
  EXPECT_TRUE(PlanCompletion("lists:", kLoaded).module_names.empty());
  EXPECT_EQ(PlanCompletion("Enum.ma", kLoaded).modules_to_list, (Names{"Elixir.Enum"}));
  EXPECT_EQ(PlanCompletion(":lists.so", kLoaded).modules_to_list, (Names{"lists"}));
  EXPECT_EQ(PlanCompletion("'Elixir.Enum':ma", kLoaded).modules_to_list, (Names{"Elixir.Enum"}));
  // "Enum." is both Enum's functions and its submodules; "Enum.E" only a submodule.
  const CompletionPlan dot = PlanCompletion("Enum.", kLoaded);
  EXPECT_EQ(dot.modules_to_list, (Names{"Elixir.Enum"}));
  EXPECT_EQ(dot.module_names, (Names{"Enum.EmptyError."}));
  const CompletionPlan sub = PlanCompletion("Enum.E", kLoaded);
  EXPECT_TRUE(sub.modules_to_list.empty());
  EXPECT_EQ(sub.module_names, (Names{"Enum.EmptyError."}));
  // The most specific module first: "Enum.EmptyError.ex" reaches Enum.EmptyError only.
  EXPECT_EQ(PlanCompletion("Enum.EmptyError.ex", kLoaded).modules_to_list,
            (Names{"Elixir.Enum.EmptyError"}));
  // A module that is not loaded is never asked about.
  EXPECT_TRUE(PlanCompletion("nosuch:f", kLoaded).modules_to_list.empty());
}

TEST(FunctionNamesTest, FewModulesAreListedWhateverThePrefix) {
  // 'Elixir.A', 'Elixir.A.a', 'Elixir.A.a.a', ...: "A.a.a.a....f" reaches into each of them.
  std::vector<std::string> loaded;
  std::string module = "Elixir.A";
  for (int i = 0; i < 20; ++i, module += ".a") loaded.push_back(module);
  std::string prefix = "A";
  for (int i = 0; i < 20; ++i) prefix += ".a";
  const CompletionPlan plan = PlanCompletion(prefix + ".f", loaded);
  EXPECT_EQ(plan.modules_to_list.size(), kMaxModulesListed);
  EXPECT_EQ(plan.modules_to_list[0], loaded.back()) << "the most specific first";
}

TEST(FunctionNamesTest, FunctionsComeInTheFormOfThePrefixAndParseBackAsPatterns) {
  const std::vector<ExportedFunction> lists = {
      {"sort", 1}, {"sort", 2}, {"seq", 2}, {"module_info", 0}};
  EXPECT_EQ(FunctionNames("lists:so", "lists", lists), (Names{"lists:sort/1", "lists:sort/2"}));
  EXPECT_EQ(FunctionNames(":lists.so", "lists", lists), (Names{":lists.sort/1", ":lists.sort/2"}));
  const std::vector<ExportedFunction> enumerable = {
      {"map", 2}, {"map_every", 3}, {"max", 1}, {"valid?", 1}, {"MACRO-def", 3}};
  EXPECT_EQ(FunctionNames("Enum.ma", "Elixir.Enum", enumerable),
            (Names{"Enum.map/2", "Enum.map_every/3", "Enum.max/1"}));
  EXPECT_EQ(FunctionNames("Enum.va", "Elixir.Enum", enumerable), (Names{"Enum.valid?/1"}));
  EXPECT_EQ(FunctionNames("'Elixir.Enum':'va", "Elixir.Enum", enumerable),
            (Names{"'Elixir.Enum':'valid?'/1"}));
  EXPECT_TRUE(FunctionNames("Enum.MACRO", "Elixir.Enum", enumerable).empty())
      << "Elixir's form of a macro's function is no pattern";
  // Every name is a pattern that targets that very function.
  for (const auto& [name, mfa] : std::vector<std::pair<std::string, std::string>>{
           {"Enum.valid?/1", "'Elixir.Enum':'valid?'/1"},
           {":lists.sort/1", "lists:sort/1"},
           {"'Elixir.Enum':'valid?'/1", "'Elixir.Enum':'valid?'/1"}}) {
    const auto pattern = probes::ParseMfaPattern(name);
    ASSERT_TRUE(pattern.ok()) << name << ": " << pattern.status().ToString();
    EXPECT_TRUE(pattern->Matches(mfa)) << name;
  }
}

}  // namespace
}  // namespace orion::daemon
