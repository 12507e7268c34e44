// shoal_torrent_tool: a development binary with only the offline torrent
// commands (`torrent create`, `torrent inspect`), so they can be built and
// tested without the node, gRPC or the rest of the CLI. The metadata round-trip
// tests run it; users run `shoal torrent ...` instead.
#include <CLI/CLI.hpp>

#include "tools/shoal/torrent_offline.h"

int main(int argc, char** argv) {
  CLI::App app{"Shoal offline torrent commands (development tool)"};
  app.require_subcommand(1);
  CLI::App* torrent = app.add_subcommand("torrent", "torrent metadata");
  torrent->require_subcommand(1);
  shoal::cli::AddTorrentOfflineCommands(*torrent);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
