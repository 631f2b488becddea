from __future__ import annotations

from switchboard_runtime.recent import RecentKeys


def test_recent_keys_forget_the_oldest_beyond_their_capacity() -> None:
    recent: RecentKeys[str] = RecentKeys(capacity=2)
    recent.add("a")
    recent.add("b")
    recent.add("a")  # used again: now the newest
    recent.add("c")
    assert "a" in recent and "c" in recent
    assert "b" not in recent
