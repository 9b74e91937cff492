"""Benchmark: personalised issue mails through the outbox to a loopback aiosmtpd server.

    .venv/bin/python bench/bench_send.py [--messages 10000] [--runs 3] [--dkim] [--bench-render]

The SMTP server runs in its own process (it discards what it receives after counting it), so
the figures are the sender's: messages per second over one reused connection, and peak memory.
Targets (issue 4): >= 200 messages/s, peak memory <= 300 MB.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REGIONS = ["central-med", "eastern-med", "balkan-route", "eastern-border", "western-med", "channel"]


def _serve(port_queue, count_value, cpu_value) -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            with count_value.get_lock():
                count_value.value += 1
                cpu_value.value = time.process_time()
            return "250 OK"

    async def main():
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(Counter(), hostname="bench.test"), "127.0.0.1", 0
        )
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass
class Story:
    section: str
    headline: str
    summary: str
    url: str


def _stories() -> list[Story]:
    sections = REGIONS + ["eu-policy", "national"]
    out = []
    for i in range(60):
        out.append(
            Story(
                sections[i % len(sections)],
                f"Story {i}: boats intercepted, pushbacks reported at the border ({i})",
                "Sixty people were rescued after a night at sea, according to NGOs who "
                "documented the case and called for an independent investigation. " * 2,
                f"https://news.example.org/2026/12/story-{i}",
            )
        )
    return out


STORIES = _stories()


@dataclass
class Rendered:
    subject: str
    html: str
    text: str
    web_url: str = ""


def bench_render(config, db, issue_id, subscriber=None, *, test=False):
    """A 60-story digest, filtered by the subscriber's regions like the real one (~60 KB HTML)."""
    from monitor.subscribers import preferences_url, unsubscribe_url

    wanted = set(subscriber["regions"]) if subscriber and subscriber["regions"] else None
    stories = [
        s for s in STORIES if wanted is None or s.section in wanted or s.section == "eu-policy"
    ]
    html_items = "".join(
        f'<tr><td style="padding:8px 0;font-family:Arial,sans-serif"><h3 style="margin:0">'
        f'<a href="{s.url}" style="color:#0b5394">{s.headline}</a></h3><p style="margin:4px 0">'
        f'{s.summary}</p><p style="font-size:12px;color:#666">Source: example.org · 3 Dec 2026'
        f"</p></td></tr>\n"
        for s in stories
    )
    text_items = "\n\n".join(f"{s.headline}\n{s.summary}\n{s.url}" for s in stories)
    unsub = unsubscribe_url(config, subscriber) if subscriber else "#"
    prefs = preferences_url(config, subscriber) if subscriber else "#"
    name = subscriber["name"] if subscriber else "reader"
    html = (
        f'<!doctype html><html><body><table width="600"><tr><td>Dear {name},</td></tr>\n'
        f'{html_items}<tr><td><a href="{unsub}">Unsubscribe</a> · '
        f'<a href="{prefs}">Preferences</a></td></tr></table></body></html>'
    )
    text = f"Dear {name},\n\n{text_items}\n\nUnsubscribe: {unsub}\nPreferences: {prefs}\n"
    return Rendered(f"Border Monitor Weekly #{issue_id}", html, text)


def _dkim_key(directory: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dkim", action="store_true", help="Sign every message (RSA 2048).")
    parser.add_argument(
        "--bench-render",
        action="store_true",
        help="Use the built-in 60-story stand-in instead of monitor.render on a "
        "week of corpus stories.",
    )
    args = parser.parse_args()

    from monitor.config import load_config
    from monitor.outbox import freeze_outbox, send_issue
    from monitor.store import open_db
    from tests.fixtures_mail import add_active, make_issue
    from tests.helpers import write_config

    ctx = multiprocessing.get_context("spawn")
    port_queue, count, server_cpu = ctx.Queue(), ctx.Value("i", 0), ctx.Value("d", 0.0)
    server = ctx.Process(target=_serve, args=(port_queue, count, server_cpu), daemon=True)
    server.start()
    port = port_queue.get(timeout=30)
    with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
        smtp = {"host": "127.0.0.1", "port": port, "security": "none", "rate_limit": 0}
        if args.dkim:
            smtp.update(
                dkim_key_file=str(_dkim_key(Path(tmp))),
                dkim_selector="bench",
                dkim_domain="example.org",
            )
        if args.bench_render:
            config = load_config(write_config(Path(tmp), smtp=smtp))
            db = open_db(config.storage.database)
            render, renderer = bench_render, "built-in 60-story stand-in"
        else:
            from monitor import digest
            from monitor.render import render_issue
            from tests.fixtures_digest import NOW, WEEK, fill_week, write_digest_config

            config = write_digest_config(Path(tmp), smtp=smtp)
            db = open_db(config.storage.database)
            fill_week(db, config, 70)
            real_issue = digest.draft_issue(db, config, WEEK, now=NOW)["id"]
            render, renderer = render_issue, "monitor.render.render_issue, a week of 70 stories"
        per_region = args.messages // (len(REGIONS) + 1)
        for i, region in enumerate(REGIONS):
            add_active(db, config, per_region, prefix=f"r{i}-", regions=[region], name="Member")
        add_active(
            db, config, args.messages - per_region * len(REGIONS), prefix="all-", name="Member"
        )
        rates, seconds, freezes, cpu, srv = [], [], [], [], []
        for run in range(args.runs):
            if args.bench_render:
                issue = make_issue(db, week=f"2026-W{10 + run:02d}")
            else:
                # The same drafted issue each run: forget the previous run's deliveries.
                issue = real_issue
                db.execute("DELETE FROM outbox WHERE issue_id = ?", [issue])
                db.execute("DELETE FROM outbox_issues WHERE issue_id = ?", [issue])
                db.execute("UPDATE digests SET state = 'approved' WHERE id = ?", [issue])
            start = time.perf_counter()
            freeze_outbox(db, config, issue)
            freezes.append(time.perf_counter() - start)
            before = count.value
            cpu_start, srv_start = time.process_time(), server_cpu.value
            stats = send_issue(db, config, issue, render=render)
            cpu.append((time.process_time() - cpu_start) / stats.sent)
            srv.append((server_cpu.value - srv_start) / stats.sent)
            assert stats.sent == args.messages and stats.connections == 1, stats
            assert count.value - before == args.messages
            seconds.append(stats.seconds)
            rates.append(stats.sent / stats.seconds)
            print(
                f"run {run + 1}: {stats.sent} messages in {stats.seconds:.1f} s = "
                f"{rates[-1]:.0f} msg/s over {stats.connections} connection",
                flush=True,
            )
        db.close()
    server.terminate()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = statistics.median(rates)
    print(f"\nrenderer                {renderer}")
    print(f"messages per run        {args.messages}" + (" (DKIM-signed)" if args.dkim else ""))
    print(f"median send time        {statistics.median(seconds):.2f} s")
    print(f"median rate             {rate:.0f} msg/s  (target >= 200: ratio {rate / 200:.2f})")
    print(
        f"median sender CPU       {statistics.median(cpu) * 1000:.2f} ms/message "
        f"(= {1 / statistics.median(cpu):.0f} msg/s if the machine were idle)"
    )
    print(f"median server CPU       {statistics.median(srv) * 1000:.2f} ms/message "
          f"(aiosmtpd, its own process)")
    print(f"load average at end     {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"median freeze time      {statistics.median(freezes) * 1000:.0f} ms")
    print(f"peak memory (sender)    {peak_mb:.0f} MB  (target <= 300: ratio {peak_mb / 300:.2f})")


if __name__ == "__main__":
    main()
