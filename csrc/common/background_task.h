// Work a caller overlaps with its own, on a native thread: a hybrid search's
// text branch runs there while the caller runs the vector branch.
//
// Why not a Python thread pool: a Python worker wakes in tens of
// microseconds and needs the GIL to start and to finish, which the caller
// holds between its native calls; a hybrid search measured barely faster
// than its branches one after the other. This worker needs no GIL, spins
// briefly between tasks before it sleeps (back-to-back searches find it
// awake), and never makes a caller wait for it: a task it has not started
// when the caller wants the result is run by the caller itself (so many
// searching threads share one worker without queueing behind it, and a
// forked child, which has no worker thread, still gets every answer).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>

namespace vecdb {

class BackgroundTask {
 public:
  explicit BackgroundTask(std::function<void()> work) : work_(std::move(work)) {}
  BackgroundTask(const BackgroundTask&) = delete;
  BackgroundTask& operator=(const BackgroundTask&) = delete;

  // Run it here unless the worker started it, then wait until it ended;
  // rethrows what it threw. Call without the GIL.
  void wait();

  // The worker's side: run it unless the caller claimed it first.
  void run_if_unclaimed();

 private:
  enum State : int { kPending = 0, kRunning = 1, kDone = 2 };
  void run();

  std::function<void()> work_;
  std::atomic<int> state_{kPending};
  std::exception_ptr error_;
  std::mutex mutex_;
  std::condition_variable ended_;
};

// Hands a task to the process's background thread (started on first use,
// and again in a forked child) and returns it; wait() on it for the result.
std::shared_ptr<BackgroundTask> start_in_background(std::function<void()> work);

}  // namespace vecdb
