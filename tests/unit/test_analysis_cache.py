"""One analysis per message content, shared by the account threads of a store
(store/sqlite/analysis_cache.py)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from roost.mime.parse import MimeLimits
from roost.store.query import MatchText, SearchQuery, TextField
from roost.store.sqlite import SqliteStore, analyses
from roost.store.sqlite.analyses import EMPTY_ROW, AnalysisRow
from roost.store.sqlite.analysis_cache import AnalysisCache
from roost.store.values import MessageSource, NewMessage


def _row(text: str) -> AnalysisRow:
    return AnalysisRow(EMPTY_ROW.columns, (text,) * len(EMPTY_ROW.texts))


def test_threads_asking_for_one_content_analyse_it_once() -> None:
    cache = AnalysisCache()
    calls = 0
    started = threading.Event()
    release = threading.Event()

    def compute() -> AnalysisRow:
        nonlocal calls
        calls += 1
        started.set()
        release.wait(10)
        return _row("one")

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(cache.get, "k", compute)
        assert started.wait(10)  # the first is analysing; the others must wait for it
        others = [pool.submit(cache.get, "k", compute) for _ in range(7)]
        release.set()
        rows = [first.result(10)] + [future.result(10) for future in others]
    assert calls == 1
    assert all(row is rows[0] for row in rows)


def test_a_failed_analysis_is_not_kept() -> None:
    cache = AnalysisCache()

    def fail() -> AnalysisRow:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        cache.get("k", fail)
    assert cache.get("k", lambda: _row("again")).texts[0] == "again"


def test_the_least_recently_used_is_dropped_first() -> None:
    cache = AnalysisCache(size=2)
    cache.get("a", lambda: _row("a"))
    cache.get("b", lambda: _row("b"))
    cache.get("a", lambda: _row("not used"))  # a is now the most recent
    cache.get("c", lambda: _row("c"))  # b goes
    assert cache.get("a", lambda: _row("new a")).texts[0] == "a"
    assert cache.get("b", lambda: _row("new b")).texts[0] == "new b"


async def test_one_message_to_many_accounts_is_analysed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    compute = analyses.compute

    def counting(source: MessageSource, limits: MimeLimits) -> AnalysisRow:
        nonlocal calls
        calls += 1
        return compute(source, limits)

    monkeypatch.setattr(analyses, "compute", counting)
    store = await SqliteStore.open(tmp_path / "data")
    try:
        names = [f"user{n}" for n in range(5)]
        for name in names:
            await store.create_account(name, "x")
        accounts = [await store.open_account(name) for name in names]
        message = b"From: a@example.org\r\nSubject: one for all\r\n\r\nHello\r\n"
        results = await asyncio.gather(
            *(
                account.append("INBOX", [NewMessage(MessageSource(data=message))])
                for account in accounts
            )
        )
        assert [result.uids for result in results] == [[1]] * 5
        assert calls == 1
        query = SearchQuery(MatchText(TextField.SUBJECT, "for all"))
        for account, result in zip(accounts, results, strict=True):
            assert (await account.search(result.mailbox.id, query)).uids == [1]
        for account in accounts:
            await account.close()
    finally:
        await store.close()
