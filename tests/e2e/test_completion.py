"""`shoal completion bash|zsh`: the generated script, driven the way bash's programmable
completion drives it (COMP_WORDS/COMP_CWORD, then COMPREPLY)."""
import shutil
import subprocess

import pytest

from conftest import SHOAL


def complete(*words):
    """What bash would offer for the command line `words` (the last one being completed)."""
    script = subprocess.run([SHOAL, "completion", "bash"], capture_output=True, check=True,
                            timeout=30).stdout.decode()
    quoted = " ".join("'" + w + "'" for w in ("shoal", *words))
    probe = (f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words)}; _shoal\n"
             'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", "-c", probe], capture_output=True, check=True, timeout=30)
    return [w for w in out.stdout.decode().split("\n") if w]


def test_bash_completes_commands_subcommands_and_flags():
    assert complete("tor") == ["torrent"]
    assert complete("torrent", "st") == ["status"]
    assert sorted(complete("torrent", "s")) == ["sequential", "status", "super-seed"]
    assert complete("torrent", "limit", "--d") == ["--down"]
    # Global options and their values do not get in the way.
    assert complete("--api", "127.0.0.1:7080", "torrent", "sup") == ["super-seed"]
    assert "--by-path" in complete("add", "--")
    # An argument: nothing from us, so bash falls back to file names (-o default).
    assert complete("add", "") == []
    assert {"add", "cat", "torrent", "completion"} <= set(complete(""))


def test_zsh_script_and_bad_shell():
    out = subprocess.run([SHOAL, "completion", "zsh"], capture_output=True, check=True,
                         timeout=30).stdout.decode()
    assert out.startswith("#compdef shoal\n") and "bashcompinit" in out and "_shoal()" in out
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", "-c", out], check=True, timeout=30)
    res = subprocess.run([SHOAL, "completion", "fish"], capture_output=True, timeout=30)
    assert res.returncode != 0
    assert res.stderr.decode().count("\n") == 1 and "fish" in res.stderr.decode()
