"""First-seen dates of pending patches: kept per group, host, package and version; a patch's
age in a group counts from the first day any host of that group had it pending."""

from __future__ import annotations

from datetime import date


def test_first_seen_is_kept_and_counted_per_group(stores) -> None:
    store = stores()
    d1, d2, d3 = date(2026, 11, 1), date(2026, 11, 5), date(2026, 11, 9)
    assert store.first_seen("web", "web-01", [("acme-tls", "1.1")], d1) == {
        ("acme-tls", "1.1"): d1}
    # seen again later: the first date stays
    assert store.first_seen("web", "web-01", [("acme-tls", "1.1")], d3) == {
        ("acme-tls", "1.1"): d1}
    # a host that joins the group later does not restart the clock of the group
    assert store.first_seen("web", "web-02", [("acme-tls", "1.1")], d2) == {
        ("acme-tls", "1.1"): d1}
    # another version is another patch; another group has its own clock
    assert store.first_seen("web", "web-02", [("acme-tls", "1.2")], d2) == {
        ("acme-tls", "1.2"): d2}
    assert store.first_seen("db", "db-01", [("acme-tls", "1.1")], d3) == {
        ("acme-tls", "1.1"): d3}
    store.close()
    # it survives a new process (the file), and is kept per host too
    again = stores()
    rows = again._conn.execute(
        "SELECT grp, host, package, version, first_seen FROM patch_first_seen "
        "ORDER BY grp, host, version").fetchall()
    assert rows == [("db", "db-01", "acme-tls", "1.1", "2026-11-09"),
                    ("web", "web-01", "acme-tls", "1.1", "2026-11-01"),
                    ("web", "web-02", "acme-tls", "1.1", "2026-11-05"),
                    ("web", "web-02", "acme-tls", "1.2", "2026-11-05")]
    assert again.first_seen("web", "web-03", [], d3) == {}
    again.close()
