# The offline torrent commands (`shoal torrent create|inspect`), included from
# tools/shoal/CMakeLists.txt:  include(torrent_cli.cmake)
# Defines shoal_torrent_cli (link it into `shoal` and call
# shoal::cli::AddTorrentOfflineCommands) and shoal_torrent_tool, a development
# binary with just these commands, used by tests/metadata.
add_library(shoal_torrent_cli ${CMAKE_CURRENT_LIST_DIR}/torrent_offline.cc)
target_link_libraries(shoal_torrent_cli PUBLIC shoal_chunk CLI11::CLI11
                                               nlohmann_json::nlohmann_json)

add_executable(shoal_torrent_tool ${CMAKE_CURRENT_LIST_DIR}/torrent_tool_main.cc)
target_link_libraries(shoal_torrent_tool PRIVATE shoal_torrent_cli)
