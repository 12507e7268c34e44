// shoal: the command-line client of shoald's gRPC API.
#include <fcntl.h>
#include <malloc.h>
#include <sys/random.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "api/token_file.h"
#include "tools/shoal/commands.h"
#include "tools/shoal/torrent_offline.h"

namespace {

// `shoal keygen [-o FILE]`: a cluster key, 32 random bytes as 64 hex
// characters and a newline. The file is created with mode 0600 and never
// overwritten.
void AddKeygenCommand(CLI::App& app) {
  auto out = std::make_shared<std::string>();
  CLI::App* keygen = app.add_subcommand(
      "keygen", "print a new cluster key, or write it to a file (mode 0600)");
  keygen->add_option("-o,--output", *out, "File to create");
  keygen->callback([out] {
    unsigned char key[32];
    if (getrandom(key, sizeof key, 0) != sizeof key) {
      std::fprintf(stderr, "shoal: no random bytes from the kernel\n");
      std::exit(1);
    }
    std::string hex;
    for (unsigned char b : key) {
      static constexpr char kDigits[] = "0123456789abcdef";
      hex += kDigits[b >> 4];
      hex += kDigits[b & 15];
    }
    hex += '\n';
    if (out->empty()) {
      std::fwrite(hex.data(), 1, hex.size(), stdout);
      return;
    }
    int fd = open(out->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::fprintf(stderr, "shoal: cannot create %s: %s\n", out->c_str(),
                   std::strerror(errno));
      std::exit(1);
    }
    const bool ok =
        write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) &&
        fsync(fd) == 0;
    close(fd);
    if (!ok) {
      std::fprintf(stderr, "shoal: writing %s failed\n", out->c_str());
      std::exit(1);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  // Content streams through here in messages of up to a piece. glibc's defaults
  // hand those buffers back to the kernel as they are freed (large ones are
  // mmapped, a heap's free top is trimmed) and fault fresh pages in for the
  // next: a 1 GiB `cat` took 24,000-98,000 page faults and 0.54-0.87 s of CPU,
  // 6,000-10,000 and 0.40-0.49 s with these (perf stat). A CLI process is
  // short-lived; what it frees it will reuse.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{"shoal: command-line client of the Shoal node (shoald)"};
  app.set_version_flag("--version", "0.1.0");
  app.require_subcommand(1);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string api = "127.0.0.1:7080";
  app.add_option("--api", api,
                 "shoald's API address HOST:PORT (https://HOST:PORT for TLS)")
      ->envname("SHOAL_API")
      ->capture_default_str();
  shoal::cli::ClientOptions client_options;
  std::string token_file;
  app.add_option("--api-token-file", token_file,
                 "Send the first token of this file (else $SHOAL_API_TOKEN)");
  app.add_option("--api-ca", client_options.ca_file,
                 "CA certificate (PEM) that signed the node's API certificate; "
                 "implies TLS")
      ->envname("SHOAL_API_CA");
  app.add_option("--api-cert", client_options.cert_file,
                 "Client certificate (PEM) for an API that requires one")
      ->envname("SHOAL_API_CERT");
  app.add_option("--api-key", client_options.key_file,
                 "The private key of --api-cert (PEM)")
      ->envname("SHOAL_API_KEY");
  shoal::cli::Action action;
  shoal::cli::AddContentCommands(app, action);
  shoal::cli::AddNodeCommands(app, action);
  shoal::cli::AddProvidersCommand(app, action);
  shoal::cli::AddPreheatCommand(app, action);
  shoal::cli::AddWatchCommand(app, action);
  shoal::cli::AddTopCommand(app, action);
  AddKeygenCommand(app);
  auto* torrent = app.add_subcommand(
      "torrent", "BitTorrent: download and seed torrents; create and inspect");
  torrent->require_subcommand(1);
  shoal::cli::AddTorrentOfflineCommands(*torrent);
  shoal::cli::AddTorrentCommands(*torrent, action);
  shoal::cli::AddLimitCommand(*torrent, action);
  shoal::cli::AddCompletionCommand(app);
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
  client_options.address = api;
  if (!token_file.empty()) {
    auto text = shoal::api::ReadTokenFile(token_file);
    auto entries = text.ok()
                       ? shoal::api::ParseTokenFile(*text)
                       : absl::StatusOr<std::vector<shoal::api::TokenEntry>>(
                             text.status());
    if (!entries.ok()) {
      std::fprintf(stderr, "shoal: --api-token-file %s: %s\n",
                   token_file.c_str(),
                   std::string(entries.status().message()).c_str());
      return 1;
    }
    client_options.token = entries->front().token;
  } else if (const char* t = std::getenv("SHOAL_API_TOKEN"); t && *t) {
    client_options.token = t;
  }
  auto client = shoal::cli::Client::Connect(client_options);
  if (!client.ok()) {
    std::fprintf(stderr, "shoal: %s\n",
                 std::string(client.status().message()).c_str());
    return 1;
  }
  absl::Status s = action(**client);
  if (!s.ok())
    std::fprintf(stderr, "shoal: %s\n", std::string(s.message()).c_str());
  // The command's files are closed (its objects are gone with it) and what
  // remains is gRPC's channel, threads and event engine: tearing them down
  // took 2-3 ms of a 9 ms command (joining threads, and Abseil measuring
  // the TSC's frequency on the way). The kernel closes the socket.
  std::cout.flush();
  std::fflush(nullptr);
  std::_Exit(s.ok() ? 0 : 1);
}
