#include <gtest/gtest.h>

#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "raympi/errors.h"
#include "raympi/function_registry.h"
#include "raympi/serialization.h"

namespace raympi {
namespace {

using internal::Deserialize;
using internal::FunctionInfo;
using internal::FunctionRegistry;
using internal::FunctionTraits;
using internal::Serialize;

int Square(int x) { return x * x; }
double Scale(const std::vector<double>& v, double factor) {
  return std::accumulate(v.begin(), v.end(), 0.0) * factor;
}
std::string Greet(const std::string& who) { return "hello " + who; }
int Fail(int) { throw std::runtime_error("boom"); }

int side_effect = 0;
void SetSideEffect(int v) { side_effect = v; }
int NoArgs() { return 17; }
std::vector<int> Doubled(std::vector<int> v) {
  for (int& x : v) x *= 2;
  return v;
}
void Append(std::vector<int>& v) { v.push_back(1); }  // non-const ref: gets the decoded copy
int NotRegistered(int x) { return x; }

namespace ns {
int Cube(int x) { return x * x * x; }
}  // namespace ns

int FirstOwner() { return 1; }
int SecondOwner() { return 2; }

RAYMPI_REMOTE(Square, Scale, &Greet);
RAYMPI_REMOTE(Fail, SetSideEffect, NoArgs);
RAYMPI_REMOTE(Doubled, Append, ns::Cube);

// An actor class: a factory (a free function returning T*) and methods.
class Account {
 public:
  explicit Account(int balance) : balance_(balance) {}
  int Deposit(int x) { return balance_ += x; }
  int Balance() const { return balance_; }

 private:
  int balance_;
};
Account* OpenAccount(int balance) { return new Account(balance); }
RAYMPI_REMOTE(OpenAccount, &Account::Deposit, &Account::Balance);

const FunctionInfo& Find(std::string_view name) {
  const FunctionInfo* info = FunctionRegistry::Instance().FindByName(name);
  if (info == nullptr) throw std::logic_error("not registered: " + std::string(name));
  return *info;
}

static_assert(std::is_same_v<FunctionTraits<decltype(&Scale)>::Args,
                             std::tuple<std::vector<double>, double>>);
static_assert(std::is_same_v<FunctionTraits<decltype(&Scale)>::Arg<0>, std::vector<double>>);
static_assert(std::is_same_v<FunctionTraits<decltype(Greet)>::Return, std::string>);
static_assert(FunctionTraits<decltype(&NoArgs)>::kArity == 0);
static_assert(FunctionTraits<decltype(&Scale)>::kArity == 2);

TEST(FunctionRegistryTest, MacroRegistersEveryListedFunction) {
  auto& registry = FunctionRegistry::Instance();
  for (const char* name : {"Square", "Scale", "Greet", "Fail", "SetSideEffect", "NoArgs", "Doubled",
                           "Append", "ns::Cube"}) {
    EXPECT_NE(registry.FindByName(name), nullptr) << name;
  }
  EXPECT_EQ(registry.FindByName("&Greet"), nullptr);
  EXPECT_EQ(registry.FindByName("Missing"), nullptr);
}

TEST(FunctionRegistryTest, FindByPointerGivesName) {
  auto& registry = FunctionRegistry::Instance();
  const FunctionInfo* info = registry.FindByPointer(&Scale);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "Scale");
  EXPECT_EQ(info->arity, 2u);
  EXPECT_EQ(info, registry.FindByName("Scale"));
  ASSERT_NE(registry.FindByPointer(Greet), nullptr);  // function name decays to the same pointer
  EXPECT_EQ(registry.FindByPointer(Greet)->name, "Greet");
  EXPECT_EQ(registry.FindByPointer(&ns::Cube)->name, "ns::Cube");
  EXPECT_EQ(registry.FindByPointer(&NotRegistered), nullptr);
}

TEST(FunctionRegistryTest, InvokeWithSerializedArgs) {
  std::string x = Serialize(7);
  EXPECT_EQ(Deserialize<int>(Find("Square").invoker({x})), 49);

  std::string v = Serialize(std::vector<double>{1, 2, 3});
  std::string factor = Serialize(2.0);
  EXPECT_EQ(Deserialize<double>(Find("Scale").invoker({v, factor})), 12.0);

  std::string who = Serialize(std::string("ray"));
  EXPECT_EQ(Deserialize<std::string>(Find("Greet").invoker({who})), "hello ray");

  EXPECT_EQ(Deserialize<int>(Find("NoArgs").invoker({})), 17);
  EXPECT_EQ(Deserialize<int>(Find("ns::Cube").invoker({x})), 343);

  std::string ints = Serialize(std::vector<int>{1, 2});
  EXPECT_EQ(Deserialize<std::vector<int>>(Find("Doubled").invoker({ints})),
            (std::vector<int>{2, 4}));
}

TEST(FunctionRegistryTest, VoidFunctionReturnsEmptyBytes) {
  side_effect = 0;
  std::string arg = Serialize(5);
  EXPECT_EQ(Find("SetSideEffect").invoker({arg}), "");
  EXPECT_EQ(side_effect, 5);
  std::string vec = Serialize(std::vector<int>{});
  EXPECT_EQ(Find("Append").invoker({vec}), "");
}

TEST(FunctionRegistryTest, ExceptionFromFunctionPropagates) {
  std::string x = Serialize(1);
  EXPECT_THROW(
      {
        try {
          Find("Fail").invoker({x});
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "boom");
          throw;
        }
      },
      std::runtime_error);
}

TEST(FunctionRegistryTest, WrongArgumentCountThrows) {
  std::string x = Serialize(1);
  try {
    Find("Scale").invoker({x});
    FAIL() << "expected raympi::Error";
  } catch (const SerializationError&) {
    FAIL() << "arity must be checked before decoding";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("Scale"), std::string::npos) << what;
    EXPECT_NE(what.find('2'), std::string::npos) << what;
    EXPECT_NE(what.find('1'), std::string::npos) << what;
  }
  EXPECT_THROW(Find("NoArgs").invoker({x}), Error);
}

TEST(FunctionRegistryTest, BadArgumentBytesThrowSerializationError) {
  std::string truncated = Serialize(std::vector<double>{1, 2}).substr(0, 12);
  std::string factor = Serialize(2.0);
  EXPECT_THROW(Find("Scale").invoker({truncated, factor}), SerializationError);
  EXPECT_THROW(Find("Square").invoker({std::string_view("abc")}), SerializationError);
}

TEST(FunctionRegistryTest, SplitsStringizedNames) {
  using internal::registry_detail::SplitFunctionNames;
  EXPECT_EQ(SplitFunctionNames("Square, Scale, &Foo"),
            (std::vector<std::string>{"Square", "Scale", "Foo"}));
  EXPECT_EQ(SplitFunctionNames("ns::A,& B"), (std::vector<std::string>{"ns::A", "B"}));
  EXPECT_EQ(SplitFunctionNames("Max<int, double>, F"),
            (std::vector<std::string>{"Max<int, double>", "F"}));
}

TEST(FunctionRegistryTest, NameClashKeepsFirstAndIsRecorded) {
  auto& registry = FunctionRegistry::Instance();
  registry.Register("Owned", &FirstOwner);
  const size_t before = registry.Conflicts().size();
  registry.Register("Owned", &FirstOwner);  // same pair again: fine, not a conflict
  EXPECT_EQ(registry.Conflicts().size(), before);
  registry.Register("Owned", &SecondOwner);
  ASSERT_EQ(registry.Conflicts().size(), before + 1);
  EXPECT_NE(registry.Conflicts().back().find("Owned"), std::string::npos);
  EXPECT_EQ(Deserialize<int>(Find("Owned").invoker({})), 1);
  EXPECT_EQ(registry.FindByPointer(&SecondOwner), nullptr);
}

TEST(FunctionRegistryTest, ActorFactoriesAndMethods) {
  auto& registry = FunctionRegistry::Instance();
  const FunctionInfo* factory = registry.FindByPointer(&OpenAccount);
  ASSERT_NE(factory, nullptr);
  EXPECT_EQ(factory->name, "OpenAccount");
  ASSERT_TRUE(factory->factory);
  EXPECT_FALSE(factory->invoker);  // not callable as a plain task
  EXPECT_NE(factory->class_name.find("Account"), std::string::npos);
  std::string arg = Serialize(10);
  std::shared_ptr<void> account = factory->factory({arg});
  const FunctionInfo* deposit = registry.FindByPointer(&Account::Deposit);
  ASSERT_NE(deposit, nullptr);
  EXPECT_EQ(deposit->name, "Account::Deposit");
  EXPECT_EQ(deposit->class_name, factory->class_name);
  std::string five = Serialize(5);
  EXPECT_EQ(Deserialize<int>(deposit->method(account.get(), {five})), 15);
  const FunctionInfo* balance = registry.FindByName("Account::Balance");
  ASSERT_NE(balance, nullptr);
  EXPECT_EQ(Deserialize<int>(balance->method(account.get(), {})), 15);
  EXPECT_THROW(deposit->method(account.get(), {}), Error);  // wrong number of arguments
}

}  // namespace
}  // namespace raympi
