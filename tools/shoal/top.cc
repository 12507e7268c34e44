#include "tools/shoal/top.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tools/shoal/client.h"
#include "tools/shoal/commands.h"
#include "tools/shoal/event_format.h"

namespace shoal::cli {
namespace {

constexpr size_t kHistory = 60;  // rate samples kept (one a second)
constexpr size_t kEvents = 50;   // event lines kept

// Columns a UTF-8 string takes (one per code point: what top prints).
size_t Columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// `s` cut or padded with spaces to exactly `width` columns.
std::string Fit(const std::string& s, size_t width) {
  std::string out;
  size_t cols = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0xF0) {
      len = 4;
    } else if (c >= 0xE0) {
      len = 3;
    } else if (c >= 0xC0) {
      len = 2;
    }
    if (cols + 1 > width) break;
    if (cols + 1 == width && i + len < s.size()) {
      out.push_back('~');  // cut here
      ++cols;
      break;
    }
    out.append(s, i, len);
    ++cols;
    i += len;
  }
  out.append(width - cols, ' ');
  return out;
}

std::string RightAlign(const std::string& s, size_t width) {
  const size_t cols = Columns(s);
  return cols >= width ? Fit(s, width) : std::string(width - cols, ' ') + s;
}

std::string CompactRate(double bytes_per_s) {
  static constexpr const char* kUnits[] = {"B", "K", "M", "G", "T"};
  double v = std::max(0.0, bytes_per_s);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s/s" : "%.1f%s/s", v,
                kUnits[u]);
  return buf;
}

std::string ShortState(const std::string& state) {
  if (state == "downloading") return "down";
  if (state == "seeding") return "seed";
  if (state == "checking") return "check";
  if (state == "downloading_metadata" || state == "metadata") return "meta";
  return state;
}

std::string Bar(double fraction, size_t width) {
  const double f = std::clamp(fraction, 0.0, 1.0);
  const auto full = static_cast<size_t>(std::floor(f * width));
  return "[" + std::string(full, '#') + std::string(width - full, '.') + "]";
}

std::string Sparkline(const std::deque<double>& values, size_t width) {
  static constexpr const char* kBlocks[] = {"▁", "▂", "▃", "▄",
                                            "▅", "▆", "▇", "█"};
  const size_t n = std::min(values.size(), width);
  double max = 0;
  for (size_t i = values.size() - n; i < values.size(); ++i)
    max = std::max(max, values[i]);
  std::string out;
  for (size_t i = values.size() - n; i < values.size(); ++i) {
    const int level =
        max <= 0
            ? 0
            : std::clamp(static_cast<int>(values[i] / max * 7.0 + 0.5), 0, 7);
    out += kBlocks[level];
  }
  return out;
}

}  // namespace

const char* TopSortName(TopSort s) {
  switch (s) {
    case TopSort::kName:
      return "name";
    case TopSort::kProgress:
      return "progress";
    case TopSort::kDownRate:
      return "rate";
    case TopSort::kEta:
      return "eta";
  }
  return "?";
}

void SortRows(std::vector<TopRow>& rows, TopSort sort) {
  auto by = [sort](const TopRow& a, const TopRow& b) {
    switch (sort) {
      case TopSort::kName:
        return a.name < b.name;
      case TopSort::kProgress:
        return a.progress > b.progress;
      case TopSort::kDownRate:
        return a.download_rate > b.download_rate;
      case TopSort::kEta:
        if (a.eta_seconds.has_value() != b.eta_seconds.has_value())
          return a.eta_seconds.has_value();
        return a.eta_seconds.value_or(0) < b.eta_seconds.value_or(0);
    }
    return false;
  };
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const TopRow& a, const TopRow& b) {
                     if (by(a, b)) return true;
                     if (by(b, a)) return false;
                     return a.id < b.id;  // a stable order for equal keys
                   });
}

std::vector<std::string> RenderTop(const TopModel& m, int width_in, int height,
                                   TopSort sort, size_t selected) {
  const size_t width = static_cast<size_t>(std::max(width_in, 40));
  std::vector<std::string> lines;
  const v1::NodeInfo& n = m.node;
  lines.push_back(
      Fit(absl::StrCat("shoal top  node ", n.node_id().substr(0, 12), "  up ",
                       HumanDuration(static_cast<int64_t>(n.uptime_seconds())),
                       "  ", n.version(), "   sort: ", TopSortName(sort)),
          width));
  const v1::StoreInfo& st = n.store();
  lines.push_back(Fit(
      absl::StrCat("store ", HumanBytes(st.used_bytes()), " / ",
                   st.capacity_bytes() == 0 ? "unlimited"
                                            : HumanBytes(st.capacity_bytes()),
                   "  contents ", st.num_contents(), "  peers ", n.num_peers(),
                   "  dht ", n.dht_nodes_public(), " public, ",
                   n.dht_nodes_cluster(), " cluster"),
      width));
  const double down = m.down_history.empty() ? 0 : m.down_history.back();
  const double up = m.up_history.empty() ? 0 : m.up_history.back();
  const size_t spark = width > 24 ? width - 24 : 0;
  lines.push_back(Fit(absl::StrCat("down ", RightAlign(CompactRate(down), 9),
                                   "  ", Sparkline(m.down_history, spark)),
                      width));
  lines.push_back(Fit(absl::StrCat("up   ", RightAlign(CompactRate(up), 9),
                                   "  ", Sparkline(m.up_history, spark)),
                      width));
  lines.push_back(Fit(m.error.empty() ? "" : "! " + m.error, width));

  // The table: NAME takes what the fixed columns leave.
  constexpr size_t kFixed = 1 + 1 + 6 + 1 + 18 + 1 + 9 + 1 + 9 + 1 + 5 + 1 + 7;
  const size_t name_w = width > kFixed + 8 ? width - kFixed : 8;
  auto row_line = [&](const std::string& mark, const std::string& name,
                      const std::string& state, const std::string& progress,
                      const std::string& down_s, const std::string& up_s,
                      const std::string& peers, const std::string& eta) {
    return Fit(absl::StrCat(mark, Fit(name, name_w), " ", Fit(state, 6), " ",
                            Fit(progress, 18), " ", RightAlign(down_s, 9), " ",
                            RightAlign(up_s, 9), " ", RightAlign(peers, 5), " ",
                            RightAlign(eta, 7)),
               width);
  };
  lines.push_back(
      row_line(" ", "NAME", "STATE", "PROGRESS", "DOWN", "UP", "PEERS", "ETA"));
  // Rows, then the events below them, within the height.
  const size_t footer = 1;  // the keys
  size_t room_rows = m.rows.size();
  size_t room_events = std::min<size_t>(m.events.size(), 5);
  if (height > 0) {
    const size_t h = static_cast<size_t>(height);
    const size_t used = lines.size() + footer;
    const size_t left = h > used ? h - used : 0;
    // Events get up to 5 lines (plus a title) when rows leave room.
    room_rows = std::min(room_rows, left);
    const size_t after_rows = left - room_rows;
    room_events = after_rows > 1 ? std::min(room_events, after_rows - 1) : 0;
  }
  // Keep the selected row in view.
  size_t first = 0;
  if (selected < m.rows.size() && selected >= room_rows && room_rows > 0)
    first = selected - room_rows + 1;
  for (size_t i = first; i < m.rows.size() && i < first + room_rows; ++i) {
    const TopRow& r = m.rows[i];
    char pct[16];
    std::snprintf(pct, sizeof pct, "%4.0f%%", r.progress * 100);
    lines.push_back(
        row_line(i == selected ? ">" : " ", r.name.empty() ? r.id : r.name,
                 r.torrent ? ShortState(r.state) : "fetch",
                 absl::StrCat(Bar(r.progress, 10), " ", pct),
                 CompactRate(r.download_rate),
                 r.torrent ? CompactRate(r.upload_rate) : "",
                 r.torrent ? absl::StrCat(r.peers) : "",
                 r.eta_seconds ? HumanDuration(*r.eta_seconds) : "-"));
  }
  if (m.rows.empty()) {
    lines.push_back(Fit(" (no torrents, and no content being fetched)", width));
  }
  if (room_events > 0) {
    lines.push_back(Fit("-- events", width));
    for (size_t i = m.events.size() - room_events; i < m.events.size(); ++i)
      lines.push_back(Fit(m.events[i], width));
  }
  if (height > 0) {
    while (lines.size() + footer < static_cast<size_t>(height))
      lines.push_back(std::string(width, ' '));
    lines.resize(static_cast<size_t>(height) - footer);
    lines.push_back(Fit(m.prompt.empty() ? "q quit  j/k select  p pause/resume "
                                           " r remove torrent  P pin  s sort"
                                         : m.prompt,
                        width));
  }
  return lines;
}

namespace {

// What a poll needs from the last one: the counters and when they were read.
struct PollState {
  uint64_t received = 0;
  uint64_t sent = 0;
  std::chrono::steady_clock::time_point at;
  bool first = true;
};

// Reads the node's status into `m` (rows, node info, rate history).
absl::Status Poll(Client& c, TopModel& m, PollState& ps) {
  v1::NodeInfo info;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
    absl::Status s =
        c.Check(c.node().GetInfo(&ctx, v1::GetInfoRequest(), &info));
    if (!s.ok()) return s;
  }
  std::vector<TopRow> rows;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
    v1::ListTorrentsResponse list;
    absl::Status s =
        c.Check(c.torrents().List(&ctx, v1::ListTorrentsRequest(), &list));
    if (!s.ok()) return s;
    for (const v1::TorrentStatus& t : list.torrents()) {
      TopRow r;
      r.id = t.id();
      r.name = t.name();
      r.torrent = true;
      r.state = t.state();
      r.progress = t.progress();
      r.download_rate = t.download_rate();
      r.upload_rate = t.upload_rate();
      r.peers = t.num_peers();
      if (t.has_eta_seconds()) r.eta_seconds = t.eta_seconds();
      rows.push_back(std::move(r));
    }
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
    v1::ListResponse list;
    absl::Status s = c.Check(c.content().List(&ctx, v1::ListRequest(), &list));
    if (!s.ok()) return s;
    for (const v1::ContentInfo& ci : list.contents()) {
      if (ci.is_directory() || ci.pieces_local() >= ci.num_pieces()) continue;
      // Incomplete: Stat says whether it is being fetched, and how fast.
      grpc::ClientContext sctx;
      sctx.set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(5));
      v1::StatRequest req;
      req.set_id(ci.id());
      v1::StatResponse stat;
      if (!c.content().Stat(&sctx, req, &stat).ok()) continue;
      const v1::ContentInfo& f = stat.content();
      if (!f.fetching()) continue;
      TopRow r;
      r.id = f.id();
      r.name = f.name();
      r.progress = f.num_pieces() == 0
                       ? 1
                       : static_cast<double>(f.pieces_local()) /
                             static_cast<double>(f.num_pieces());
      r.download_rate = f.download_rate();
      r.peers = f.num_peers();
      if (f.has_eta_seconds()) r.eta_seconds = f.eta_seconds();
      rows.push_back(std::move(r));
    }
  }
  const auto now = std::chrono::steady_clock::now();
  if (!ps.first) {
    const double dt = std::chrono::duration<double>(now - ps.at).count();
    if (dt > 0) {
      auto push = [](std::deque<double>& h, double v) {
        h.push_back(v);
        if (h.size() > kHistory) h.pop_front();
      };
      push(m.down_history,
           static_cast<double>(info.bytes_received() -
                               std::min(info.bytes_received(), ps.received)) /
               dt);
      push(m.up_history,
           static_cast<double>(info.bytes_sent() -
                               std::min(info.bytes_sent(), ps.sent)) /
               dt);
    }
  } else {
    // One sample: the rows' own rates.
    double down = 0, up = 0;
    for (const TopRow& r : rows) {
      down += r.download_rate;
      up += r.upload_rate;
    }
    m.down_history.push_back(down);
    m.up_history.push_back(up);
  }
  ps = {info.bytes_received(), info.bytes_sent(), now, false};
  m.node = std::move(info);
  m.rows = std::move(rows);
  m.error.clear();
  return absl::OkStatus();
}

std::atomic<bool> g_quit{false};
std::atomic<bool> g_resized{false};
int g_wake_fd = -1;  // the write end of the self-pipe

void OnSignal(int sig) {
  if (sig == SIGWINCH) {
    g_resized = true;
  } else {
    g_quit = true;
  }
  if (g_wake_fd >= 0) {
    const char b = 1;
    [[maybe_unused]] ssize_t n = write(g_wake_fd, &b, 1);
  }
}

// The terminal's state, restored by the destructor: whatever way the
// dashboard ends (q, Ctrl-C, an error), the shell gets its terminal back.
class TerminalGuard {
 public:
  TerminalGuard() {
    ok_ = tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (ok_) {
      termios raw = saved_;
      raw.c_lflag &= ~(ICANON | ECHO);  // ISIG stays: Ctrl-C is SIGINT
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    Write("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");  // alternate screen
  }
  ~TerminalGuard() {
    Write("\x1b[?25h\x1b[?1049l");
    if (ok_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  TerminalGuard(const TerminalGuard&) = delete;
  TerminalGuard& operator=(const TerminalGuard&) = delete;

  static void Write(const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = write(STDOUT_FILENO, s.data() + done, s.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

 private:
  termios saved_{};
  bool ok_ = false;
};

std::pair<int, int> TerminalSize() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 &&
      ws.ws_row > 0)
    return {ws.ws_col, ws.ws_row};
  return {80, 24};
}

// Follows the events stream on its own thread into `events` (formatted
// lines), waking the dashboard through `wake_fd`.
class EventFollower {
 public:
  EventFollower(Client& c, int wake_fd) : wake_fd_(wake_fd) {
    thread_ = std::thread([this, &c] {
      v1::EventsRequest req;
      auto reader = c.node().Events(&ctx_, req);
      v1::Event e;
      while (reader->Read(&e)) {
        if (e.kind() == "progress" || e.kind() == "fetch_progress")
          continue;  // the table shows progress
        {
          std::lock_guard<std::mutex> lock(mu_);
          lines_.push_back(EventText(e).substr(11));  // the time, not the date
          if (lines_.size() > kEvents) lines_.pop_front();
        }
        const char b = 1;
        [[maybe_unused]] ssize_t n = write(wake_fd_, &b, 1);
      }
      reader->Finish();
    });
  }
  ~EventFollower() {
    ctx_.TryCancel();
    thread_.join();
  }
  std::deque<std::string> Lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  int wake_fd_;
  grpc::ClientContext ctx_;
  std::mutex mu_;
  std::deque<std::string> lines_;
  std::thread thread_;
};

absl::Status RunAction(Client& c, const TopRow& r, char key) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (r.torrent && key == 'p') {
    v1::TorrentRequest req;
    req.set_id(r.id);
    v1::TorrentStatus st;
    return c.Check(r.state == "paused" ? c.torrents().Resume(&ctx, req, &st)
                                       : c.torrents().Pause(&ctx, req, &st));
  }
  if (r.torrent && key == 'r') {
    v1::RemoveTorrentRequest req;
    req.set_id(r.id);
    v1::RemoveTorrentResponse resp;
    return c.Check(c.torrents().Remove(&ctx, req, &resp));
  }
  if (!r.torrent && key == 'P') {
    v1::PinRequest req;
    req.set_id(r.id);
    v1::PinResponse resp;
    return c.Check(c.content().Pin(&ctx, req, &resp));
  }
  return absl::OkStatus();
}

absl::Status Interactive(Client& c, TopSort sort) {
  if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
    return absl::FailedPreconditionError(
        "shoal top needs a terminal (use shoal top --once in scripts)");
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0)
    return absl::InternalError("cannot create a pipe");
  g_wake_fd = pipe_fds[1];
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{}, old_winch{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGWINCH, &sa, &old_winch);

  {
    TerminalGuard guard;
    EventFollower follower(c, pipe_fds[1]);
    TopModel model;
    PollState ps;
    size_t selected = 0;
    std::string remove_id;  // a removal waiting for its "y"
    std::vector<std::string> last_frame;
    auto next_poll = std::chrono::steady_clock::now();
    auto last_draw = std::chrono::steady_clock::time_point();
    bool dirty = true;
    while (!g_quit) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_poll) {
        if (absl::Status s = Poll(c, model, ps); !s.ok()) {
          model.error = std::string(s.message());
        }
        SortRows(model.rows, sort);
        next_poll = now + std::chrono::seconds(1);
        dirty = true;
      }
      if (g_resized.exchange(false)) {
        last_frame.clear();  // every line again, at the new size
        TerminalGuard::Write("\x1b[2J");
        dirty = true;
      }
      if (dirty && now - last_draw >= std::chrono::milliseconds(33)) {
        model.events = follower.Lines();
        if (!model.rows.empty())
          selected = std::min(selected, model.rows.size() - 1);
        const auto [w, h] = TerminalSize();
        std::vector<std::string> frame = RenderTop(model, w, h, sort, selected);
        if (frame != last_frame) {
          // Only the lines that changed, each from its first column.
          std::string out;
          for (size_t i = 0; i < frame.size(); ++i) {
            if (i < last_frame.size() && last_frame[i] == frame[i]) continue;
            absl::StrAppend(&out, "\x1b[", i + 1, ";1H", frame[i], "\x1b[K");
          }
          TerminalGuard::Write(out);
          last_frame = std::move(frame);
        }
        last_draw = now;
        dirty = false;
      }
      // Sleep until a key, an event, a signal, the next poll or frame.
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          next_poll - std::chrono::steady_clock::now());
      if (dirty) wait = std::min(wait, std::chrono::milliseconds(33));
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {pipe_fds[0], POLLIN, 0}};
      poll(fds, 2, static_cast<int>(std::max<int64_t>(0, wait.count())));
      if (fds[1].revents & POLLIN) {
        char drain[64];
        while (read(pipe_fds[0], drain, sizeof drain) > 0) {
        }
        dirty = true;
      }
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        char keys[32];
        const ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
        if (n <= 0 && (fds[0].revents & POLLHUP)) break;  // the terminal went
        for (ssize_t i = 0; i < n; ++i) {
          const char k = keys[i];
          dirty = true;
          if (!remove_id.empty()) {  // answering "remove ...? y/n"
            if (k == 'y' || k == 'Y') {
              TopRow r;
              r.id = remove_id;
              r.torrent = true;
              absl::Status s = RunAction(c, r, 'r');
              model.error = s.ok() ? "" : std::string(s.message());
              next_poll = std::chrono::steady_clock::now();
            }
            remove_id.clear();
            model.prompt.clear();
            continue;
          }
          if (k == 'q' || k == 'Q') {
            g_quit = true;
          } else if (k == 'j' || (k == 'B' && i >= 2 && keys[i - 1] == '[')) {
            if (selected + 1 < model.rows.size()) ++selected;
          } else if (k == 'k' || (k == 'A' && i >= 2 && keys[i - 1] == '[')) {
            if (selected > 0) --selected;
          } else if (k == 's') {
            sort = static_cast<TopSort>((static_cast<int>(sort) + 1) % 4);
            SortRows(model.rows, sort);
          } else if (k == 'r' && selected < model.rows.size() &&
                     model.rows[selected].torrent) {
            remove_id = model.rows[selected].id;
            model.prompt =
                absl::StrCat("remove torrent ", model.rows[selected].name,
                             " (its files stay)? y/n");
          } else if ((k == 'p' || k == 'P') && selected < model.rows.size()) {
            absl::Status s = RunAction(c, model.rows[selected], k);
            model.error = s.ok() ? "" : std::string(s.message());
            next_poll = std::chrono::steady_clock::now();  // show the result
          }
        }
      }
    }
  }  // the terminal is restored here
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGWINCH, &old_winch, nullptr);
  g_wake_fd = -1;
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  return absl::OkStatus();
}

}  // namespace

void AddTopCommand(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "top",
      "A live dashboard of the node: rates, torrents and fetches, events (q "
      "quits)");
  auto once = std::make_shared<bool>(false);
  auto sort_name = std::make_shared<std::string>("rate");
  cmd->add_flag("--once", *once, "Print one frame as plain text and exit");
  cmd->add_option("--sort", *sort_name, "Sort by name, progress, rate or eta")
      ->check(CLI::IsMember({"name", "progress", "rate", "eta"}));
  cmd->callback([=, &action] {
    action = [=](Client& c) -> absl::Status {
      TopSort sort = TopSort::kDownRate;
      for (TopSort s : {TopSort::kName, TopSort::kProgress, TopSort::kDownRate,
                        TopSort::kEta}) {
        if (*sort_name == TopSortName(s)) sort = s;
      }
      if (!*once) return Interactive(c, sort);
      TopModel model;
      PollState ps;
      if (absl::Status s = Poll(c, model, ps); !s.ok()) return s;
      SortRows(model.rows, sort);
      const int width = isatty(STDOUT_FILENO) ? TerminalSize().first : 80;
      for (const std::string& line :
           RenderTop(model, width, 0, sort, SIZE_MAX)) {
        // Plain text: no trailing padding.
        std::printf("%s\n",
                    line.substr(0, line.find_last_not_of(' ') + 1).c_str());
      }
      return absl::OkStatus();
    };
  });
}

}  // namespace shoal::cli
