// `shoal torrent create` and `shoal torrent inspect`: the torrent commands
// that work without a running node.
//
//   CLI::App app;
//   CLI::App* torrent = app.add_subcommand("torrent", "...");
//   shoal::cli::AddTorrentOfflineCommands(*torrent);
//
// Both commands print their result on stdout. On failure they print one line
// "shoal: <message>" on stderr and throw CLI::RuntimeError(1), which
// CLI::App::exit() turns into exit status 1 without printing more.
#ifndef SHOAL_TOOLS_SHOAL_TORRENT_OFFLINE_H_
#define SHOAL_TOOLS_SHOAL_TORRENT_OFFLINE_H_

#include <CLI/CLI.hpp>

namespace shoal::cli {

// Registers `create` and `inspect` as subcommands of `torrent`.
//
//   torrent create PATH -o OUT [--v1|--v2|--hybrid] [--piece-size BYTES]
//                  [--tracker URL]... [--web-seed URL]... [--private]
//                  [--comment TEXT] [--created-by TEXT] [--no-creation-date]
//                  [--threads N]
//     Hashes PATH (a file or a directory) and writes a .torrent to OUT;
//     prints the torrent's ID (v2 info-hash hex if it has one, else v1).
//     Default: --hybrid, automatic piece size (docs/metadata.md).
//   torrent inspect FILE|MAGNET [--json]
//     Parses a .torrent file or a magnet URI and describes it; --json prints
//     one JSON object with name, info_hash_v1, info_hash_v2 (null when
//     absent), total_size, num_files (pad files included, as libtorrent
//     counts), piece_length, num_pieces, and more (files, trackers, ...).
//
// `torrent` must outlive parsing (the callbacks capture their options).
void AddTorrentOfflineCommands(CLI::App& torrent);

}  // namespace shoal::cli

#endif  // SHOAL_TOOLS_SHOAL_TORRENT_OFFLINE_H_
