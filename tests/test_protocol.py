"""The protocol module's contracts hold: each Lua script's documented KEYS and ARGV are the
ones its Lua reads and the ones every call in refresher/ passes, no Lua lives anywhere
else, and the replies and bytes the scripts share with Python agree. Pure: no Redis."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from refresher.core.protocol import layout, scripts, signals

ROOT = Path(scripts.__file__).parents[3]
MODULES = sorted(ROOT.joinpath("refresher").rglob("*.py"))
SCRIPTS_SOURCE = Path(scripts.__file__).read_text()
DOCUMENTED = re.compile(r"#\s+(KEYS|ARGV)\[(\d+)(\.\.\.)?\]\s+(\(optional\))?")
FRAGMENTS = {"EPOCH_NOW"}  # a Lua function the scripts begin with, never run alone


@dataclass
class Contract:
    keys: int  # fixed KEYS
    more_keys: bool  # KEYS[n...]: any number after them
    argv: int  # ARGV, optional ones included
    optional: int  # trailing ARGV that may be left out, together


def contracts() -> dict[str, Contract]:
    """Each script constant's contract, from the comment block right above it."""
    found: dict[str, Contract] = {}
    lines = SCRIPTS_SOURCE.splitlines()
    for i, line in enumerate(lines):
        name = re.match(r"([A-Z_]+) = (EPOCH_NOW \+ )?\"\"\"$", line)
        if name is None or name[1] in FRAGMENTS:
            continue
        block = []
        for above in reversed(lines[:i]):
            if not above.startswith("#"):
                break
            block.append(above)
        marks = [DOCUMENTED.match(entry) for entry in block]
        keys = [m for m in marks if m and m[1] == "KEYS"]
        argv = [m for m in marks if m and m[1] == "ARGV"]
        assert sorted(int(m[2]) for m in keys) == list(range(1, len(keys) + 1)), name[1]
        assert sorted(int(m[2]) for m in argv) == list(range(1, len(argv) + 1)), name[1]
        more = [m for m in keys if m[3]]
        found[name[1]] = Contract(len(keys) - len(more), bool(more), len(argv), sum(1 for m in argv if m[4]))
    return found


CONTRACTS = contracts()


def test_every_script_constant_has_a_contract() -> None:
    lua = {name for name, value in vars(scripts).items() if isinstance(value, str) and "redis.call" in value}
    assert lua - FRAGMENTS == set(CONTRACTS)
    assert len(CONTRACTS) == 10


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_the_lua_reads_what_its_contract_documents(name: str) -> None:
    lua, contract = getattr(scripts, name), CONTRACTS[name]
    keys = {int(n) for n in re.findall(r"KEYS\[(\d+)\]", lua)}
    assert keys == set(range(1, contract.keys + 1))  # further keys (KEYS[n...]) are read through #KEYS
    assert ("#KEYS" in lua) == contract.more_keys
    assert {int(n) for n in re.findall(r"ARGV\[(\d+)\]", lua)} == set(range(1, contract.argv + 1))


@dataclass
class Call:
    where: str
    script: str
    keys: tuple[int, bool]  # how many keys, and whether more are spread in (*companions)
    argv: list[int]  # how many arguments, in each form the call can take


def _count(node: ast.expr) -> tuple[int, bool]:
    assert isinstance(node, ast.Tuple), ast.unparse(node)
    return sum(1 for e in node.elts if not isinstance(e, ast.Starred)), any(isinstance(e, ast.Starred) for e in node.elts)


def _argv(node: ast.expr, function: ast.FunctionDef) -> list[int]:
    """The argument counts a call's ARGV can have: a tuple's, or each branch of the
    conditional a local name was given."""
    if isinstance(node, ast.Name):
        [value] = [n.value for n in ast.walk(function) if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None
                   and any(isinstance(t, ast.Name) and t.id == node.id for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
        node = value
    if isinstance(node, ast.IfExp):
        return _argv(node.body, function) + _argv(node.orelse, function)
    count, spread = _count(node)
    assert not spread, ast.unparse(node)
    return [count]


def script_calls() -> list[Call]:
    calls = []
    for path in MODULES:
        tree = ast.parse(path.read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Script":
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    source, keys, argv = node.args
                    assert isinstance(source, ast.Name), f"{where}: a script not named in refresher/core/protocol/scripts.py"
                    calls.append(Call(where, source.id, _count(keys), _argv(argv, function)))
    return calls


CALLS = script_calls()


def test_every_script_op_names_a_protocol_script_and_every_script_is_run() -> None:
    assert {call.script for call in CALLS} == set(CONTRACTS), [call.where for call in CALLS]


@pytest.mark.parametrize("call", CALLS, ids=[call.where for call in CALLS])
def test_each_call_passes_the_keys_and_arguments_its_script_documents(call: Call) -> None:
    contract = CONTRACTS[call.script]
    keys, spread = call.keys
    assert keys == contract.keys and (not spread or contract.more_keys)
    for argv in call.argv:
        assert argv in (contract.argv - contract.optional, contract.argv)  # optional ones: all or none


def test_no_lua_outside_the_protocol_module() -> None:
    assert ROOT / "refresher" / "core" / "lock.py" in MODULES
    for path in MODULES:
        if path.name != "scripts.py":
            assert "redis.call(" not in path.read_text(), path


def test_the_scripts_replies_and_bytes_are_the_ones_python_reads() -> None:
    assert f"'^{layout.MAGIC.decode()}|(%d+)|'" in scripts.CLAIM_PENDING
    assert f"'^{layout.MAGIC.decode()}|(%d+)|'" in scripts.COMMIT_LOAD
    assert {int(n) for n in re.findall(r"return (-?\d)\b", scripts.CLAIM_PENDING)} == {c.value for c in scripts.Claim}
    assert {int(n) for n in re.findall(r"return \{(-?\d)", scripts.COMMIT_LOAD)} == {c.value for c in scripts.Commit}
    assert {int(n) for n in re.findall(r"return \{(\d)", scripts.TAKE_REFRESH_LOCK)} == {scripts.HELD, scripts.BACKING_OFF, 2}
    for lua in (scripts.COMMIT_LOAD, scripts.REPLACE_VALUE):
        assert f"'{signals.FILLED.decode()}' .. " in lua and f"or '{signals.WRITTEN.decode()}'" in lua
    assert f"'SPUBLISH', ARGV[5], '{signals.RETRY.decode()}'" in scripts.COMMIT_LOAD
