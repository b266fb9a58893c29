"""The table of ``make bench``: one row per figure, Roost beside Dovecot, with the
target where an issue set one; and the details printed below it (bench/README.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Row:
    scenario: str
    metric: str
    unit: str
    better: str  # "higher" or "lower"
    roost: float | None
    dovecot: float | None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.roost is None or self.dovecot is None or self.dovecot == 0:
            return None
        return self.roost / self.dovecot


def _get(details: dict[str, Any], key: str, label: str, *path: str) -> Any:
    value: Any = details.get(key, {}).get(label)
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def build_rows(bench: Any) -> list[Row]:
    d = bench.details
    rows: list[Row] = []

    def add(key: str, scenario: str, metric: str, unit: str, better: str, *path: str) -> Row:
        row = Row(
            scenario,
            metric,
            unit,
            better,
            _get(d, key, "roost", *path),
            _get(d, key, "dovecot", *path),
        )
        rows.append(row)
        return row

    def ratio_target(row: Row, text: str, test: Callable[[float], bool]) -> None:
        row.target = text
        if row.ratio is not None:
            row.met = test(row.ratio)

    def served_row(key: str) -> None:
        """The server's CPU over an mbsync sync (its share x seconds): steadier than the
        wall time, of which mbsync's own share can be most."""
        served = [
            _cpu_per(
                _get(d, key, label, "server_cpu"),
                1 / (_get(d, key, label, "seconds") or 1),
            )
            for label in ("roost", "dovecot")
        ]
        rows.append(Row("  server CPU of that sync", "CPU", "ms", "lower", *served))

    if "login" in d:
        add(
            "login",
            "LOGIN, default argon2id, sign-in cache on",
            "logins/s",
            "/s",
            "higher",
            "logins_per_s",
        )
    if "login-nocache" in d:
        add(
            "login-nocache",
            "LOGIN, default argon2id, cache_size = 0",
            "logins/s",
            "/s",
            "higher",
            "logins_per_s",
        )
    if "login" in d:
        per = [
            _cpu_per(_get(d, "login", label, "server_cpu"), _get(d, "login", label, "logins_per_s"))
            for label in ("roost", "dovecot")
        ]
        row = Row("server CPU per connect+LOGIN+LOGOUT, cached", "CPU", "ms", "lower", *per)
        row.target = "< 1 ms"
        row.met = per[0] < 1.0 if per[0] is not None else None
        rows.append(row)
    clients = bench.sizes.mixed_clients[0]
    key = f"tls-mixed-{clients}"
    if key in d:
        row = add(
            key,
            f"defaults, TLS, sign-in per iteration, {clients} clients",
            "commands/s",
            "/s",
            "higher",
            "ops_per_s",
        )
        ratio_target(row, "≥ 1.0×", lambda r: r >= 1.0)
        plain = _get(d, f"{key}-plain", "dovecot", "ops_per_s")
        if plain is not None:
            row = Row(
                "  the same, Dovecot with {PLAIN} passwords",
                "commands/s",
                "/s",
                "higher",
                row.roost,
                plain,
            )
            ratio_target(row, "≥ 1.0×", lambda r: r >= 1.0)
            rows.append(row)
    if "many-connections" in d:
        asked = _get(d, "many-connections", "roost", "asked")
        row = add(
            "many-connections",
            f"{asked} connections from one address, defaults",
            "held",
            "",
            "higher",
            "held",
        )
        errors = _get(d, "many-connections", "roost", "errors")
        row.target = f"{asked}, no errors"
        row.met = row.roost == asked and errors == 0 if row.roost is not None else None
        add(
            "many-connections",
            f"  STATUS/NOOP on {asked} connections",
            "commands/s",
            "/s",
            "higher",
            "commands_per_s",
        )
    for clients in bench.sizes.mixed_clients:
        key = f"mixed-{clients}"
        if key in d:
            row = add(
                key, f"mixed workload, {clients} clients", "commands/s", "/s", "higher", "ops_per_s"
            )
            ratio_target(row, "≥ 1.0×", lambda r: r >= 1.0)
    rows += _node_rows(bench)
    if "large" in d:
        size = bench.sizes.large
        for step, target in (
            ("SELECT", True),
            ("UID FETCH 1:* (UID FLAGS)", True),
            ("UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)", True),
            ("UID FETCH 1:* (ENVELOPE BODYSTRUCTURE) again", False),
            ("UID SEARCH TEXT rare word", False),
            ("UID SEARCH FROM", False),
        ):
            row = add(
                "large", f"{size:,} msgs: {step}", "time", "s", "lower", "steps", step, "seconds"
            )
            if target:
                ratio_target(row, "≤ 1.5×", lambda r: r <= 1.5)
            if step.startswith("UID SEARCH TEXT"):
                ratio_target(row, "≥ 10× faster", lambda r: r <= 0.1)
    if "idle" in d:
        n = bench.sizes.idle_connections
        row = add("idle", f"{n:,} IDLE connections", "held", "", "higher", "connections_held")
        row.target = f"{n:,}, no errors"
        held = row.roost
        errors = _get(d, "idle", "roost", "errors")
        row.met = held == n and errors == 0 if held is not None else None
        row = add(
            "idle",
            f"{n:,} IDLE: memory per connection (RSS)",
            "KiB",
            "KiB",
            "lower",
            "rss_per_connection_kib",
        )
        row.target = "≤ 64 KiB"
        row.met = row.roost <= 64 if row.roost is not None else None
        add(
            "idle",
            f"{n:,} IDLE: memory per connection (PSS)",
            "KiB",
            "KiB",
            "lower",
            "pss_per_connection_kib",
        )
        add("idle", f"{n:,} IDLE: all told of a new message", "time", "s", "lower", "notify_all_s")
        add("idle", f"{n:,} IDLE: connect+login+select+idle all", "time", "s", "lower", "setup_s")
    if "idle-latency" in d:
        for name in ("p50_ms", "p99_ms"):
            add(
                "idle-latency",
                f"IDLE wake-up latency {name[:3]} ({bench.sizes.wake_idlers} idlers)",
                "ms",
                "ms",
                "lower",
                "latency",
                name,
            )
    for clients in bench.sizes.append_clients:
        key = f"append-{clients}"
        if key in d:
            row = add(
                key,
                f"durable APPEND, {clients} client{'s' * (clients > 1)}",
                "appends/s",
                "/s",
                "higher",
                "appends_per_s",
            )
            ratio_target(row, "≥ 1.0×", lambda r: r >= 1.0)
    for connections, recipients in bench.lmtp_shapes:
        key = f"lmtp-{connections}x{recipients}"
        if key in d:
            row = add(
                key,
                f"LMTP, {connections} conn., {recipients} rcpt/message",
                "deliveries/s",
                "/s",
                "higher",
                "deliveries_per_s",
            )
            ratio_target(row, "≥ 1.0×", lambda r: r >= 1.0)
    if "lmtp-wake" in d:
        for name in ("p50_ms", "p99_ms"):
            add(
                "lmtp-wake",
                f"LMTP 250 to EXISTS in IDLE, {name[:3]}",
                "ms",
                "ms",
                "lower",
                "latency",
                name,
            )
    if "import" in d:
        row = add(
            "import",
            f"roost import, {bench.sizes.import_messages:,}-message mbox",
            "messages/s",
            "/s",
            "higher",
            "messages_per_s",
        )
        row.target = "> 1,000/s (Roost only)"
        row.met = row.roost > 1000 if row.roost is not None else None
    if "sieve" in d:
        for path, what in (
            ("evaluate_us", "Sieve: one message against 100 rules"),
            ("parse_evaluate_us", "Sieve: parse header + 100 rules"),
        ):
            row = add("sieve", what, "CPU", "µs", "lower", path)
            row.target = "< 1,000 µs (Roost only)"
            row.met = row.roost < 1000 if row.roost is not None else None
    if "submission" in d:
        for connections in (1, 10):
            for sent, limit, how in (
                ("false", "off", "no Sent copy, no hourly count"),
                ("true", "on", "Sent copy, hourly count (limit raised)"),
            ):
                row = add(
                    "submission",
                    f"submission, {connections} conn., {how}",
                    "messages/s",
                    "/s",
                    "higher",
                    f"roost-{connections}-sent_{sent}-limit_{limit}",
                )
                direct = _get(d, "submission", "roost", f"direct-{connections}")
                if direct is not None:
                    row.target = f"relay direct: {direct:,.0f}/s"
    if "mbsync" in d:
        row = add(
            "mbsync",
            f"mbsync initial sync, {bench.sizes.sync:,} msgs",
            "time",
            "s",
            "lower",
            "seconds",
        )
        ratio_target(row, "≤ 1.0×", lambda r: r <= 1.0)
        served_row("mbsync")
        add("mbsync", "  mbsync's own CPU in that sync", "CPU", "s", "lower", "mbsync_cpu_s")
    compressed = {
        "mbsync-compress": "  the same, COMPRESS=DEFLATE by Roost only (Dovecot without)",
        "mbsync-compress-both": "  the same, COMPRESS=DEFLATE by both (Dovecot's level 6)",
    }
    for key, label in compressed.items():
        if key in d:
            add(key, label, "time", "s", "lower", "seconds")
            served_row(key)
    return rows


def _cpu_per(share: float | None, rate: float | None) -> float | None:
    """Milliseconds of server CPU per operation, from a CPU share and a rate."""
    if share is None or not rate:
        return None
    return round(1000 * share / rate, 3)


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" + (f" {unit}" if unit else "")
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def _node_rows(bench: Any) -> list[Row]:
    """The mixed workload on 1 and on N PostgreSQL nodes (run.py --nodes), each node
    one worker process; issue 15's target: N=2 at least 1.6x one node."""
    rows = []
    for clients in bench.sizes.mixed_clients:
        by_label = bench.details.get(f"mixed-{clients}-nodes", {})
        counts = sorted(int(label.split("-")[1]) for label in by_label)
        one = _get(bench.details, f"mixed-{clients}-nodes", "roost-1-nodes", "ops_per_s")
        for count in counts:
            value = by_label[f"roost-{count}-nodes"].get("ops_per_s")
            scenario = f"mixed on PostgreSQL, {count} node{'s' * (count > 1)} x 1 worker"
            row = Row(scenario, "commands/s", "/s", "higher", value, None)
            if count > 1 and one and value is not None:
                row.scenario += f" ({value / one:.2f}× 1 node)"
                row.target = "≥ 1.6× 1 node"
                row.met = value / one >= 1.6
            rows.append(row)
    return rows


def print_table(rows: list[Row], out: Any = sys.stdout) -> None:
    header = ("scenario", "Roost", "Dovecot", "Roost÷Dovecot", "target")
    lines = []
    for row in rows:
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "–"
        target = row.target + (" ✓" if row.met else " ✗" if row.met is False else "")
        lines.append(
            (
                row.scenario,
                _format(row.roost, row.unit),
                _format(row.dovecot, row.unit),
                ratio,
                target,
            )
        )
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]
    rule = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), file=out)
    print(rule, file=out)
    for line in lines:
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:4], widths[1:4], strict=True)
        ]
        cells.append(line[4].ljust(widths[4]))
        print("  ".join(cells).rstrip(), file=out)


def print_details(bench: Any, out: Any = sys.stdout) -> None:
    """Per-command latencies of the mixed workload, peak RSS of the large mailbox, and
    the generator's CPU share per scenario."""
    for key, by_server in bench.details.items():
        if key.startswith(("mixed-", "tls-mixed-")):
            print(f"\n{key}: latency per command, p50 / p99 ms", file=out)
            for label, result in by_server.items():
                commands = result.get("commands", {})
                cells = [
                    f"{name} {c['p50_ms']}/{c['p99_ms']}"
                    for name, c in commands.items()
                    if c["count"]
                ]
                print(f"  {label:8} " + ", ".join(cells), file=out)
                if result.get("errors"):
                    print(
                        f"  {label:8} errors: {result['errors']} e.g. "
                        f"{result['error_samples'][:2]}",
                        file=out,
                    )
        if key == "large":
            print("\nlarge mailbox: peak RSS of the serving process (MiB) per step", file=out)
            for label, result in by_server.items():
                first = result.get("steps", {}).get("first SELECT (index build)", {})
                print(f"  {label:8} first SELECT after seeding: {first.get('seconds')} s", file=out)
            for label, result in by_server.items():
                steps = result.get("steps", {})
                cells = []
                for name, step in steps.items():
                    peak = step.get("peak_rss_kib")
                    extra = f" [{step['status']}]" if step.get("status") not in ("OK",) else ""
                    match = (
                        f" {step['matches']}/{step['expected']} hits" if "matches" in step else ""
                    )
                    cells.append(
                        f"{name}: {'n/a' if peak is None else round(peak / 1024, 1)}{extra}{match}"
                    )
                print(f"  {label:8} " + "; ".join(cells), file=out)
    print("\nload generator CPU (share of one core) / server CPU, per scenario", file=out)
    for key, by_server in bench.details.items():
        cells = [
            f"{label} {r.get('client_cpu', '?')}/{r.get('server_cpu', '?')}"
            for label, r in by_server.items()
        ]
        print(f"  {key:14} " + ", ".join(cells), file=out)
