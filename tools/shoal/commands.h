// Registration of the `shoal` subcommands that talk to shoald.
#ifndef SHOAL_TOOLS_SHOAL_COMMANDS_H_
#define SHOAL_TOOLS_SHOAL_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "tools/shoal/client.h"

namespace shoal::cli {

// What the parsed command line asks for; main() runs it with a connected
// client.
using Action = std::function<absl::Status(Client&)>;

// add, cat, get, stat, ls, pin, unpin, rm.
void AddContentCommands(CLI::App& app, Action& action);
// providers.
void AddProvidersCommand(CLI::App& app, Action& action);
void AddPreheatCommand(CLI::App& app, Action& action);
// node info.
void AddNodeCommands(CLI::App& app, Action& action);
// torrent add|ls|status|wait|pause|resume|rm|peers|files|prio|sequential|
// recheck|reannounce, under the `torrent` subcommand.
void AddTorrentCommands(CLI::App& torrent, Action& action);
// torrent limit.
void AddLimitCommand(CLI::App& torrent, Action& action);
// watch.
void AddWatchCommand(CLI::App& app, Action& action);
// top (tools/shoal/top.cc).
void AddTopCommand(CLI::App& app, Action& action);
// completion bash|zsh: runs offline. Register it last: it lists the commands
// registered before it.
void AddCompletionCommand(CLI::App& app);

// A CLI11 check for unsigned options: CLI11 would wrap a negative number into
// a huge unsigned one.
inline std::string NotNegative(const std::string& value) {
  return value.find('-') == std::string::npos ? std::string()
                                              : "must not be negative";
}

// Copies a ReadResponse stream that starts at `offset` into `out`, checking
// that offsets follow on; `progress(done, total, last)` sees each message.
absl::Status CopyReadStream(
    Client& client, grpc::ClientContext& ctx,
    grpc::ClientReaderInterface<v1::ReadResponse>& reader, uint64_t offset,
    std::optional<uint64_t> length, FILE* out,
    const std::function<void(uint64_t, uint64_t, bool)>& progress);

// Creates `path` through `fill`, writing PATH.shoal-part and renaming it into
// place, so the file is whole or absent.
absl::Status WriteFileAtomically(
    const std::string& path, const std::function<absl::Status(FILE*)>& fill);

}  // namespace shoal::cli

#endif  // SHOAL_TOOLS_SHOAL_COMMANDS_H_
