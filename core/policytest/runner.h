// `luacs test`: policy tests written in Lua.
//
// Files named *_test.lua beside a policy are run, each in a Lua state of
// its own, against that policy loaded into the real policy engine; their
// simulated CPEs (core/sim, built from a data-model CSV) run whole sessions
// through the real session driver (sim_session.h). docs/policy-testing.md
// is the reference for the Lua side.
//
// Thread: the caller's; everything is made and dropped by run_tests.
#pragma once

#include <cstdio>
#include <string>

#include "lua/policy.h"

namespace luacs::policytest {

struct TestOptions {
  std::string dir;         // the policy folder, with its *_test.lua files
  std::string models_dir;  // where cpe{ model = "name" } looks for name*.csv
  lua::Limits limits;      // the policy's budgets, as [policy] sets them
};

struct TestSummary {
  int files = 0;
  int passed = 0;
  int failed = 0;
  std::string error;  // set when nothing could run (no tests, the policy does not load)
};

// Runs every test of every *_test.lua file in opts.dir, in file-name order,
// writing one line per test (and the failure, with its file:line) to `out`.
TestSummary run_tests(const TestOptions& opts, FILE* out);

}  // namespace luacs::policytest
