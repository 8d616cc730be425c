"""The command line as an operator meets it: a gateway that is not running, names in any script."""
from __future__ import annotations

import unicodedata

from cli import tollgate
from conftest import free_port, nonce


def display_width(text: str) -> int:
    """Columns in a terminal, for the single-scalar characters these tests use."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 0 if unicodedata.combining(c) else 1 for c in text)


def test_a_gateway_that_is_not_running_is_named_in_one_line_with_how_to_start_it():
    url = f"http://127.0.0.1:{free_port()}"
    done = tollgate("users", "list", url=url)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    message = lines[0]
    assert url in message and "tollgate serve" in message and "--url" in message and "TOLLGATE_URL" in message, message
    assert "connection refused" in message and "NSURLErrorDomain" not in message, message
    assert done.stdout == ""


def test_the_url_given_with_dash_dash_url_is_the_one_named():
    url = f"http://127.0.0.1:{free_port()}"
    done = tollgate("teams", "list", "--url", url, url="http://127.0.0.1:9")
    assert done.returncode != 0 and f"cannot reach the gateway at {url} " in done.stderr, done.stderr


def test_users_list_keeps_columns_aligned_with_emoji_and_cjk_names(gateway, admin):
    n = nonce()
    teams = {f"☕🦊fox-{n}": f"team-a-{n}", f"数据团队-{n}": f"研究-{n}", f"plain-{n}": f"team-c-{n}"}
    for user, team in teams.items():
        admin.create_team(team)
        admin.create_user(user, team)

    done = tollgate("users", "list", url=gateway.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines[0]
    assert header.split() == ["id", "name", "team", "created_at"], header
    team_column = display_width(header[:header.index("team")])
    for user, team in teams.items():
        [line] = [line for line in lines if f" {user} " in line]
        assert display_width(line[:line.index(team)]) == team_column, f"{user!r} is not aligned:\n{header}\n{line}"
