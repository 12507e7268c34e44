#include "tools/shoal/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"
#include "tools/shoal/client.h"

namespace shoal::cli {

Progress::Progress() : enabled_(::isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
  if (drawn_) std::fputc('\n', stderr);
}

void Progress::Update(uint64_t done, uint64_t total, bool force,
                      std::optional<double> rate, std::optional<int64_t> eta,
                      std::string_view note) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  if (!rate && secs > 0) rate = static_cast<double>(done) / secs;
  if (!eta && rate && *rate >= 1 && total > done)
    eta = static_cast<int64_t>(static_cast<double>(total - done) / *rate + 0.5);
  const double frac =
      total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::string line = absl::StrFormat("[%s] %5.1f%% %s / %s", bar, frac * 100,
                                     HumanBytes(done), HumanBytes(total));
  if (rate) line += "  " + HumanBytes(static_cast<uint64_t>(*rate)) + "/s";
  if (eta && done < total) line += "  ETA " + HumanDuration(*eta);
  if (!note.empty()) line.append("  ").append(note);
  // Blank what a longer previous line left.
  const size_t width = line.size();
  if (width < last_width_) line += std::string(last_width_ - width, ' ');
  last_width_ = width;
  std::fprintf(stderr, "\r%s", line.c_str());
  drawn_ = true;
}

}  // namespace shoal::cli
