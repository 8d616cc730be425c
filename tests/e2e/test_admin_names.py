"""Names and ids never meet: a name shaped like an id is refused, and a reference shaped like an id names only the
entity with that id."""
from __future__ import annotations

import json

import pytest

from cli import tollgate
from conftest import nonce


@pytest.mark.parametrize("path, name", [
    ("/admin/orgs", "org_ede2504853e1c3df"),
    ("/admin/teams", "team_ede2504853e1c3df"),
    ("/admin/users", "user_ede2504853e1c3df"),
])
def test_a_name_shaped_like_an_id_is_refused_with_400_naming_the_field(admin, path, name):
    r = admin.http.post(path, json={"name": name})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "name", error
    assert name in error["message"] and "shape of an id" in error["message"], error


def test_a_key_name_shaped_like_an_id_is_refused(admin):
    user = admin.create_user(f"user-{nonce()}", admin.create_team(f"team-{nonce()}")["name"])
    r = admin.http.post("/admin/keys", json={"user": user["name"], "name": "key_0123456789abcdef"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "name", r.text


def test_users_create_with_another_users_id_is_refused_and_keys_create_by_id_goes_to_that_user(gateway, admin):
    team = admin.create_team(f"team-{nonce()}")["name"]
    alice = admin.create_user(f"alice-{nonce()}", team)

    refused = tollgate("users", "create", alice["id"], url=gateway.url)
    assert refused.returncode != 0
    assert "400" in refused.stderr and "shape of an id" in refused.stderr, refused.stderr
    listed = admin.http.get("/admin/users").json()["data"]
    assert [u["id"] for u in listed if u["name"] == alice["id"]] == []

    created = tollgate("keys", "create", "--user", alice["id"], "--json", url=gateway.url)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["user_id"] == alice["id"] and key["user"] == alice["name"], key
