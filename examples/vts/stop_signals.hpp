#pragma once
// Ctrl-C (SIGINT) and SIGTERM (what a batch scheduler sends before it ends a job) while `vts train`
// trains or `vts encode --update` encodes: the first asks the program to stop before its next batch
// with its work saved (the training state for --resume, the codes so far; StopRequest below adds
// the commands' --time-limit). The handler gives the signal its former action back as it runs
// (SA_RESETHAND), so a second one ends the process at once, as if no handler were there.
#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include "commands.hpp"

namespace vts::cli {

class StopSignals {
 public:
  StopSignals() {
    received_.store(0);
    struct sigaction action {};
    action.sa_handler = &on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND | SA_RESTART;  // system calls (file reads) go on rather than fail
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal that asked to stop, or 0.
  static int received() { return received_.load(); }
  // How the stop messages name it.
  static const char* name(int signal) { return signal == SIGINT ? "Ctrl-C (SIGINT)" : "SIGTERM"; }
  // The exit status of a program stopped by it: 128 + the signal, as a shell reports a process the
  // signal ended.
  static int exit_status(int signal) { return 128 + signal; }

 private:
  // A lock-free atomic, not a volatile sig_atomic_t: the signal may run the handler on any thread
  // (a loader worker, an OpenMP thread), and the training thread must see what it stored.
  static_assert(std::atomic<int>::is_always_lock_free, "a signal handler may only store to a lock-free atomic");
  static void on_signal(int signal) { received_.store(signal); }
  static inline std::atomic<int> received_{0};
  struct sigaction old_int_ {}, old_term_ {};
};

// What stops `vts train` and `vts encode --update` part way with their work saved: Ctrl-C,
// SIGTERM, or the command's --time-limit (seconds from `start`; 0: none). The first cause seen
// is kept, so the message and the exit status name the one that stopped the work.
class StopRequest {
 public:
  StopRequest(double time_limit_seconds, std::chrono::steady_clock::time_point start)
      : time_limit_(time_limit_seconds), start_(start) {}

  bool requested() {
    if (by_.empty()) {
      if (const int signal = StopSignals::received()) {
        by_ = StopSignals::name(signal);
        exit_status_ = StopSignals::exit_status(signal);
      } else if (time_limit_ > 0 && seconds_since(start_) >= time_limit_) {
        by_ = "--time-limit (" + format_duration(time_limit_) + ")";
        exit_status_ = kTimeLimitExitStatus;
      }
    }
    return !by_.empty();
  }
  const std::string& by() const { return by_; }  // "SIGTERM", "--time-limit (1h30m)"; empty until requested
  int exit_status() const { return exit_status_; }

  // EX_TEMPFAIL: the job is not done, and running it again (with --resume, or the same encode)
  // goes on with it.
  static constexpr int kTimeLimitExitStatus = 75;

 private:
  StopSignals signals_;  // the handlers, installed for this object's life
  double time_limit_;
  std::chrono::steady_clock::time_point start_;
  std::string by_;
  int exit_status_ = 0;
};

}  // namespace vts::cli
