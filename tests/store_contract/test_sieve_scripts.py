"""Sieve script storage and tracking (RFC 5804 semantics the store keeps): one active
script at most, the active one cannot be deleted, rename keeps it active, the compiled
form travels with its source."""

from __future__ import annotations

import pytest

from roost.store.base import Account, NoSuchScript, ScriptActive, ScriptExists, SieveScript


async def test_put_get_list_replace(alice: Account) -> None:
    assert await alice.list_scripts() == []
    assert await alice.active_script() is None
    await alice.put_script("b", "keep;", '{"v":1}', 1)
    await alice.put_script("a", "discard;", '{"v":1}', 1)
    assert [s.name for s in await alice.list_scripts()] == ["a", "b"]
    assert await alice.get_script("a") == SieveScript("a", "discard;", '{"v":1}', 1, False)
    await alice.put_script("a", "stop;", '{"v":2}', 2)
    assert await alice.get_script("a") == SieveScript("a", "stop;", '{"v":2}', 2, False)
    with pytest.raises(NoSuchScript):
        await alice.get_script("c")


async def test_one_active_and_replace_keeps_it_active(alice: Account) -> None:
    await alice.put_script("a", "keep;", "{}", 1)
    await alice.put_script("b", "keep;", "{}", 1)
    await alice.set_active_script("a")
    await alice.set_active_script("b")
    assert [(s.name, s.active) for s in await alice.list_scripts()] == [("a", False), ("b", True)]
    await alice.put_script("b", "discard;", "{}", 1)
    active = await alice.active_script()
    assert active is not None and active.name == "b" and active.source == "discard;"
    with pytest.raises(NoSuchScript):
        await alice.set_active_script("zzz")
    assert (await alice.active_script()) == active  # a failed SETACTIVE changes nothing
    await alice.set_active_script(None)
    assert await alice.active_script() is None


async def test_delete_refuses_the_active_script(alice: Account) -> None:
    await alice.put_script("a", "keep;", "{}", 1)
    await alice.set_active_script("a")
    with pytest.raises(ScriptActive):
        await alice.delete_script("a")
    await alice.set_active_script(None)
    await alice.delete_script("a")
    assert await alice.list_scripts() == []
    with pytest.raises(NoSuchScript):
        await alice.delete_script("a")


async def test_rename(alice: Account) -> None:
    await alice.put_script("a", "keep;", "{}", 1)
    await alice.put_script("b", "keep;", "{}", 1)
    await alice.set_active_script("a")
    with pytest.raises(ScriptExists):
        await alice.rename_script("a", "b")
    with pytest.raises(NoSuchScript):
        await alice.rename_script("x", "y")
    await alice.rename_script("a", "c")
    active = await alice.active_script()
    assert active is not None and active.name == "c"


async def test_update_compiled_only_for_the_same_source(alice: Account) -> None:
    await alice.put_script("a", "keep;", "old", 0)
    await alice.update_compiled("a", "keep;", "new", 1)
    assert (await alice.get_script("a")).compiled == "new"
    await alice.update_compiled("a", "discard;", "stale", 2)  # source changed meanwhile
    script = await alice.get_script("a")
    assert (script.compiled, script.compiled_version) == ("new", 1)


async def test_tracking_expires(alice: Account) -> None:
    assert not await alice.sieve_tracked("vacation", "k", now=100)
    await alice.sieve_track("vacation", "k", expires=200, now=100)
    assert await alice.sieve_tracked("vacation", "k", now=199)
    assert not await alice.sieve_tracked("vacation", "k", now=200)
    assert not await alice.sieve_tracked("duplicate", "k", now=150)  # kinds are separate
    await alice.sieve_track("duplicate", "other", expires=400, now=300)  # prunes "k"
    assert not await alice.sieve_tracked("vacation", "k", now=150)
    assert await alice.sieve_tracked("duplicate", "other", now=300)
