// The policy engine of one worker thread: the Lua states it loaded, one per
// policy generation still in use, and a Run for each new session on the
// newest. Not thread-safe: one per worker, used only on its thread.
#include <string>

#include "core/util/log.h"
#include "lua/binding.h"
#include "lua/policy.h"
#include "lua/run.h"
#include "lua/state.h"

namespace luacs::lua {

Engine::Engine(PolicyManager& manager, FileServices files, int worker)
    : manager_(manager), files_(std::move(files)), worker_(worker) {}

Engine::~Engine() = default;

void Engine::refresh() {
  const uint64_t gen = manager_.generation();
  if (gen == 0) return;
  if ((!current_ || current_->generation() != gen) && gen != failed_generation_) {
    auto pol = manager_.current();
    std::string error;
    auto st = pol ? State::load(pol->files, pol->generation, manager_.limits(), &error) : nullptr;
    if (st) {
      open_dev(st->L());
      open_inform(st->L());
      current_ = st;
      std::erase_if(states_, [](const auto& w) { return w.expired(); });
      states_.push_back(st);
    } else {
      failed_generation_ = gen;
      log::error("policy generation " + std::to_string(gen) + " does not load on worker " +
                 std::to_string(worker_) + ": " + error + "; keeping generation " +
                 std::to_string(current_ ? current_->generation() : 0));
    }
  }
  if (worker_ >= 0 && worker_ < PolicyManager::kMaxWorkers) {
    const auto w = static_cast<size_t>(worker_);
    manager_.lua_bytes[w].store(memory(), std::memory_order_relaxed);
    manager_.worker_generation[w].store(generation(), std::memory_order_relaxed);
  }
}

std::unique_ptr<Run> Engine::start(RunContext ctx) {
  if (manager_.generation() == 0) return nullptr;
  refresh();
  if (!current_ || (!current_->has_hooks() && !current_->has_tasks())) return nullptr;
  auto impl = std::make_unique<Run::Impl>(current_, manager_, files_, std::move(ctx));
  return std::unique_ptr<Run>(new Run(std::move(impl)));
}

void Engine::idle_gc() {
  if (current_) lua_gc(current_->L(), LUA_GCSTEP, 0);
}

size_t Engine::memory() const {
  size_t total = 0;
  for (const auto& w : states_)
    if (auto s = w.lock()) total += s->memory();
  return total;
}

uint64_t Engine::generation() const {
  return current_ ? current_->generation() : 0;
}

}  // namespace luacs::lua
