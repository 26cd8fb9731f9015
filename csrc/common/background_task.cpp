#include "common/background_task.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define VECDB_SPIN_PAUSE() _mm_pause()
#else
#define VECDB_SPIN_PAUSE() std::this_thread::yield()
#endif

namespace vecdb {
namespace {

// How long the worker stays awake after a task, and a caller spins for its
// result before it sleeps: about a hybrid search's branch (tens of µs).
constexpr auto kSpin = std::chrono::microseconds(200);

class Worker {
 public:
  Worker() : pid_(getpid()) { std::thread([this] { loop(); }).detach(); }

  pid_t pid() const { return pid_; }

  void push(std::shared_ptr<BackgroundTask> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(task));
      waiting_.store(true, std::memory_order_release);
    }
    wake_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      while (!waiting_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
        VECDB_SPIN_PAUSE();
      }
      std::shared_ptr<BackgroundTask> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return !queue_.empty(); });
        task = std::move(queue_.front());
        queue_.pop_front();
        waiting_.store(!queue_.empty(), std::memory_order_release);
      }
      task->run_if_unclaimed();
    }
  }

  const pid_t pid_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<BackgroundTask>> queue_;
  std::atomic<bool> waiting_{false};
};

// Never destroyed: the detached thread may outlive static destruction.
Worker* worker() {
  static std::mutex guard;
  static Worker* current = nullptr;
  std::lock_guard<std::mutex> lock(guard);
  if (current == nullptr || current->pid() != getpid()) current = new Worker();  // a fork left no thread
  return current;
}

}  // namespace

void BackgroundTask::run() {
  try {
    work_();
  } catch (...) {
    error_ = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.store(kDone, std::memory_order_release);
  }
  ended_.notify_all();
}

void BackgroundTask::run_if_unclaimed() {
  int expected = kPending;
  if (state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) run();
}

void BackgroundTask::wait() {
  int expected = kPending;
  if (state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) {
    run();  // the worker has not started it: do it here rather than wait for it
  } else {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    while (state_.load(std::memory_order_acquire) != kDone && std::chrono::steady_clock::now() < until) {
      VECDB_SPIN_PAUSE();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    ended_.wait(lock, [this] { return state_.load(std::memory_order_acquire) == kDone; });
  }
  if (error_) std::rethrow_exception(error_);
}

std::shared_ptr<BackgroundTask> start_in_background(std::function<void()> work) {
  auto task = std::make_shared<BackgroundTask>(std::move(work));
  worker()->push(task);
  return task;
}

}  // namespace vecdb
