// `shoal completion bash|zsh`: a completion script generated from the
// command tree itself, so it never falls behind the commands.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tools/shoal/commands.h"

namespace shoal::cli {
namespace {

struct Level {
  std::string path;  // " torrent limit": the subcommands that lead here
  std::vector<std::string> subcommands;
  std::vector<std::string> flags;
};

void Walk(const CLI::App& app, const std::string& path,
          std::vector<Level>& out) {
  Level level;
  level.path = path;
  for (const CLI::App* sub :
       app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty()) continue;
    level.subcommands.push_back(sub->get_name());
  }
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& l : o->get_lnames())
      level.flags.push_back("--" + l);
    for (const std::string& s : o->get_snames()) level.flags.push_back("-" + s);
  }
  out.push_back(level);
  for (const CLI::App* sub :
       app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!sub->get_name().empty()) Walk(*sub, path + " " + sub->get_name(), out);
  }
}

std::string Join(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

// Bash: the words typed so far that name subcommands give the path; a word
// starting with "-" completes to that level's flags, any other to its
// subcommands, and where there are none (an argument) to file names.
std::string BashScript(const CLI::App& root) {
  std::vector<Level> levels;
  Walk(root, "", levels);
  std::string known, words;
  for (const Level& l : levels) {
    if (!l.path.empty())
      known += (known.empty() ? "" : "|") + ("\"" + l.path + "\"");
    words += "    \"" + l.path + "\") subs=\"" + Join(l.subcommands) +
             "\"; flags=\"" + Join(l.flags) + "\" ;;\n";
  }
  return "# shoal completion for bash (from `shoal completion bash`)\n"
         "_shoal() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} path= i subs flags\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    case \"$path ${COMP_WORDS[i]}\" in\n"
         "      " +
         known +
         ") path=\"$path ${COMP_WORDS[i]}\" ;;\n"
         "    esac\n"
         "  done\n"
         "  case \"$path\" in\n" +
         words +
         "  esac\n"
         "  if [[ $cur == -* ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
         "  elif [[ -n $subs ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
         "  else\n"
         "    COMPREPLY=()\n"
         "  fi\n"
         "}\n"
         "complete -o default -F _shoal shoal\n";
}

}  // namespace

void AddCompletionCommand(CLI::App& app) {
  auto shell = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "completion",
      "Print a shell completion script: source <(shoal completion bash), or "
      "put the zsh one in your $fpath as _shoal");
  cmd->add_option("SHELL", *shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  const CLI::App* root = &app;
  cmd->callback([shell, root] {
    std::string script = BashScript(*root);
    // zsh runs the bash function through its bash compatibility layer.
    if (*shell == "zsh") {
      script =
          "#compdef shoal\n"
          "autoload -U +X bashcompinit && bashcompinit\n" +
          script;
    }
    std::fwrite(script.data(), 1, script.size(), stdout);
  });
}

}  // namespace shoal::cli
