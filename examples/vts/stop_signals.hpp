#pragma once
// Ctrl-C (SIGINT) and SIGTERM (what a batch scheduler sends before it ends a job) while `vts train`
// trains: the first asks the run to stop before its next batch, with its state saved for --resume.
// The handler gives the signal its former action back as it runs (SA_RESETHAND), so a second one
// ends the process at once, as if no handler were there.
#include <csignal>

namespace vts::cli {

class StopSignals {
 public:
  StopSignals() {
    received_ = 0;
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
  static int received() { return received_; }

 private:
  static void on_signal(int signal) { received_ = signal; }
  static inline volatile std::sig_atomic_t received_ = 0;
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace vts::cli
