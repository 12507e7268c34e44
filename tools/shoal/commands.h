// Registration of the `shoal` subcommands that talk to shoald.
#ifndef SHOAL_TOOLS_SHOAL_COMMANDS_H_
#define SHOAL_TOOLS_SHOAL_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <functional>

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
// node info.
void AddNodeCommands(CLI::App& app, Action& action);
// torrent add|ls|status|wait|pause|resume|rm|peers|files|prio|sequential|
// recheck|reannounce, under the `torrent` subcommand.
void AddTorrentCommands(CLI::App& torrent, Action& action);
// torrent limit.
void AddLimitCommand(CLI::App& torrent, Action& action);
// watch.
void AddWatchCommand(CLI::App& app, Action& action);

}  // namespace shoal::cli

#endif  // SHOAL_TOOLS_SHOAL_COMMANDS_H_
