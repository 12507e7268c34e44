// shoal: the command-line client of shoald's gRPC API.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "tools/shoal/commands.h"
#include "tools/shoal/torrent_offline.h"

int main(int argc, char** argv) {
  CLI::App app{"shoal: command-line client of the Shoal node (shoald)"};
  app.set_version_flag("--version", "0.1.0");
  app.require_subcommand(1);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string api = "127.0.0.1:7080";
  app.add_option("--api", api, "shoald's API address HOST:PORT")
      ->envname("SHOAL_API")
      ->capture_default_str();
  shoal::cli::Action action;
  shoal::cli::AddContentCommands(app, action);
  shoal::cli::AddNodeCommands(app, action);
  shoal::cli::AddProvidersCommand(app, action);
  shoal::cli::AddWatchCommand(app, action);
  auto* torrent = app.add_subcommand(
      "torrent", "BitTorrent: download and seed torrents; create and inspect");
  torrent->require_subcommand(1);
  shoal::cli::AddTorrentOfflineCommands(*torrent);
  shoal::cli::AddTorrentCommands(*torrent, action);
  shoal::cli::AddLimitCommand(*torrent, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "shoal: %s (see shoal --help)\n", e.what());
    return 2;
  }
  if (!action) return 0;  // an offline command already ran
  shoal::cli::Client client(api);
  absl::Status s = action(client);
  if (!s.ok()) {
    std::fprintf(stderr, "shoal: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
