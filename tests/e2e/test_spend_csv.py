"""The spend report as CSV, opened by a finance user in a spreadsheet: names and tags that look like formulas
arrive as text, money arrives as numbers."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

from conftest import nonce


def test_spend_csv_neutralises_formula_names_and_tags_and_quotes_what_needs_it(gateway, admin, ledger_row):
    n = nonce()
    team = f"@team-{n}"
    user = f"=HYPERLINK(\"http://x\",\"{n}\")"
    tags = [f"+tag-{n}", f"-tag-{n}"]
    admin.create_team(team)
    admin.create_user(user, team)
    key = admin.create_key(user)["key"]
    client = gateway.client(key)
    raw = client.chat.completions.with_raw_response.create(
        model="fake-mini", messages=[{"role": "user", "content": f"csv guard {n}"}],
        extra_headers={"x-tollgate-tags": ",".join(tags)})
    client.close()
    row = ledger_row(raw.headers["x-tollgate-request-id"])

    for group, names in (("user", [user]), ("team", [team]), ("tag", tags)):
        text = admin.spend(group, format="csv").text
        table = list(csv.reader(io.StringIO(text)))
        header = table[0]
        lines = {line[0]: dict(zip(header, line)) for line in table[1:] if line}
        for name in names:
            assert name not in lines, f"{name!r} is in the CSV as it is:\n{text}"
            line = lines["'" + name]
            assert line["cost_usd"] == row["cost_usd"] and Decimal(line["cost_usd"]) > 0, line
            assert Decimal(line["savings_usd"]) == 0 and int(line["requests"]) == 1, line
            assert ('"\'' + name.replace('"', '""') + '"') in text, text
