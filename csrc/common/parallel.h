// Fork-join parallelism over a fixed number of tasks.
//
// Threads are spawned per call rather than kept in a pool: callers only go
// parallel for work that takes milliseconds, where a thread start (~20 us) is
// noise, and having no long-lived threads keeps the extension safe across
// fork() (Python multiprocessing) without atfork handlers.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace vecdb {

// Number of hardware threads, at least 1.
inline std::size_t hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

// Runs fn(task, worker) for every task in [0, n_tasks) on up to n_threads
// threads (the caller is worker 0; fewer if the system will not start
// more). Tasks are handed out dynamically, so uneven tasks balance. The
// first exception thrown by any task is rethrown here after all workers
// have stopped.
template <class Fn>
void parallel_for(std::size_t n_tasks, std::size_t n_threads, Fn&& fn) {
  if (n_threads > n_tasks) n_threads = n_tasks;
  if (n_threads <= 1) {
    for (std::size_t t = 0; t < n_tasks; ++t) fn(t, std::size_t{0});
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto work = [&](std::size_t worker) {
    try {
      for (std::size_t t = next.fetch_add(1); t < n_tasks; t = next.fetch_add(1)) {
        fn(t, worker);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      next.store(n_tasks);  // stop handing out work
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(n_threads - 1);
  for (std::size_t w = 1; w < n_threads; ++w) {
    try {
      helpers.emplace_back(work, w);
    } catch (const std::system_error&) {
      // No more threads to be had (a process or container limit): those
      // started share the tasks. Propagating would destroy the started
      // ones unjoined, which terminates the process.
      break;
    }
  }
  work(0);
  for (auto& thread : helpers) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace vecdb
