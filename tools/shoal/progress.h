// A one-line progress bar on stderr, drawn only when stderr is a terminal
// (nothing extra when piped): bar, percent, bytes done and total, rate, ETA.
//
//   Progress p;
//   p.Update(done, total);                      // rate: the average so far
//   p.Update(done, total, false, rate, eta, "12 peers");
#ifndef SHOAL_TOOLS_SHOAL_PROGRESS_H_
#define SHOAL_TOOLS_SHOAL_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shoal::cli {

class Progress {
 public:
  Progress();
  // Ends the line if one was drawn.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Redraws at most every 100 ms unless `force`. `rate` (bytes/s) defaults
  // to the average since the bar started and `eta` (seconds) to what is
  // left at that rate; `note` goes at the end (a state, a peer count).
  void Update(uint64_t done, uint64_t total, bool force = false,
              std::optional<double> rate = std::nullopt,
              std::optional<int64_t> eta = std::nullopt,
              std::string_view note = {});
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  bool drawn_ = false;
  size_t last_width_ = 0;
  std::chrono::steady_clock::time_point start_ =
      std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace shoal::cli

#endif  // SHOAL_TOOLS_SHOAL_PROGRESS_H_
