#include "core/nbi/job_waker.h"

#include <algorithm>

#include "core/util/log.h"

namespace luacs::nbi {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kTick{10};
// How long to wait before looking again when the waker caught up with the
// job's queuing.
constexpr std::chrono::milliseconds kCaughtUp{200};

// The next page of devices to wake, the job's state, and the progress so
// far written back ($3..$5) in the same statement.
constexpr const char* kPageSql =
    "WITH j AS (SELECT state FROM jobs WHERE id = $1),"
    " p AS (SELECT DISTINCT device_id FROM tasks WHERE job_id = $1 AND state = 'pending'"
    "  AND device_id > $2 ORDER BY device_id LIMIT 1000),"
    " u AS (UPDATE jobs SET woken = $3::int8, wake_through = $4, wake_outcomes = $5::jsonb"
    "  WHERE id = $1 AND wake_state = 'waking' RETURNING 1)"
    " SELECT j.state, p.device_id, (SELECT count(*) FROM u) FROM j LEFT JOIN p ON true"
    " ORDER BY p.device_id";

constexpr const char* kFinishSql =
    "UPDATE jobs SET wake_state = $2, woken = $3::int8, wake_through = $4,"
    " wake_outcomes = $5::jsonb WHERE id = $1 AND wake_state = 'waking'";

std::string outcomes_json(const std::map<std::string, int64_t>& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j.dump();
}

}  // namespace

static_assert(JobWaker::kPage == 1000, "kPageSql's LIMIT");

void JobWaker::start(Api& api, int64_t job, WakeProgress progress) {
  if (!api.services().wake || !api.db()) return;
  auto& waking = api.jobs_waking();
  if (waking.count(job)) return;
  auto w = std::make_shared<JobWaker>(api, job, std::move(progress));
  waking.emplace(job, w);
  log::info("api: job " + std::to_string(job) + " wakes its devices, " +
            std::to_string(w->progress_.rate) + " a second" +
            (w->progress_.through.empty() ? "" : ", from after " + w->progress_.through));
  w->timer_.reset(event_new(api.base(), -1, EV_PERSIST, &JobWaker::on_tick, w.get()));
  const timeval tv = loop::to_timeval(kTick);
  event_add(w->timer_.get(), &tv);
  w->fetch();
}

void JobWaker::cancel(Api& api, int64_t job) {
  api.jobs_waking().erase(job);  // its callbacks hold only weak pointers
}

JobWaker::JobWaker(Api& api, int64_t job, WakeProgress progress)
    : api_(api),
      job_(job),
      progress_(std::move(progress)),
      last_tick_(Clock::now()),
      fetched_through_(progress_.through) {}

void JobWaker::on_tick(evutil_socket_t, short, void* self) {
  static_cast<JobWaker*>(self)->tick();
}

// Token bucket: `rate` tokens a second, at most a tenth of a second's worth
// saved up, so a stall is not followed by a burst.
void JobWaker::tick() {
  auto keep = shared_from_this();  // finish() may drop the Api's reference
  const auto now = Clock::now();
  const double rate = progress_.rate;
  tokens_ = std::min(tokens_ + rate * std::chrono::duration<double>(now - last_tick_).count(),
                     std::max(1.0, rate / 10));
  last_tick_ = now;
  while (tokens_ >= 1 && !ready_.empty() && in_flight_ < kMaxInFlight) {
    tokens_ -= 1;
    std::string device = std::move(ready_.front());
    ready_.pop_front();
    dispatch(std::move(device));
  }
  if (!fetching_ && !exhausted_ && ready_.size() < kPage / 2 && now >= next_fetch_) fetch();
  if (exhausted_ && ready_.empty() && in_flight_ == 0) finish("done");
}

void JobWaker::fetch() {
  fetching_ = true;
  std::weak_ptr<JobWaker> weak = weak_from_this();
  api_.db()->query(kPageSql,
                   {std::to_string(job_), fetched_through_, std::to_string(progress_.woken),
                    progress_.through, outcomes_json(progress_.outcomes)},
                   [weak](PgReply r) {
                     if (auto self = weak.lock()) self->fetched(r);
                   });
}

void JobWaker::fetched(const PgReply& r) {
  fetching_ = false;
  if (!r.ok()) {
    // An outage: the resumer takes the job up again from its row.
    log::warn("api: job " + std::to_string(job_) + " stopped waking: " + r.error());
    api_.jobs_waking().erase(job_);
    return;
  }
  if (r.rows() == 0 || r.get(0, 0) == "cancelled") return cancel(api_, job_);
  int got = 0;
  for (int i = 0; i < r.rows(); ++i) {
    if (r.is_null(i, 1)) continue;
    ready_.emplace_back(r.get(i, 1));
    ++got;
  }
  if (got) fetched_through_ = ready_.back();
  if (got < kPage) {
    // Past the last pending task: done once the job has queued them all,
    // else the queuing is ahead and we look again.
    if (r.get(0, 0) == "queued")
      exhausted_ = true;
    else
      next_fetch_ = Clock::now() + kCaughtUp;
  }
}

void JobWaker::dispatch(std::string device) {
  ++in_flight_;
  ++progress_.woken;
  progress_.through = device;
  std::weak_ptr<JobWaker> weak = weak_from_this();
  auto back = api_.executor();
  // wait 0: the job needs the CPE's answer, not its session.
  api_.services().wake(device, std::chrono::milliseconds(0), [weak, back](WakeAnswer a) {
    back([weak, a = std::move(a)] {
      if (auto self = weak.lock()) self->answered(a);
    });
  });
}

void JobWaker::answered(const WakeAnswer& a) {
  --in_flight_;
  ++progress_.outcomes[a.outcome];
}

void JobWaker::finish(const char* state) {
  api_.db()->query(
      kFinishSql,
      {std::to_string(job_), state, std::to_string(progress_.woken), progress_.through,
       outcomes_json(progress_.outcomes)},
      [job = job_, state](PgReply r) {
        if (!r.ok())
          log::warn("api: job " + std::to_string(job) + " waking not recorded: " + r.error());
      });
  log::info("api: job " + std::to_string(job_) + " woke " + std::to_string(progress_.woken) +
            " devices");
  api_.jobs_waking().erase(job_);
}

}  // namespace luacs::nbi
